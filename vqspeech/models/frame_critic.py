"""An adversarial loss on the spectral decoder's frames: a small convolutional critic.

An L1 regression predicts the median frame given the codes: where several frames fit the same
codes (a formant transition, a burst) the prediction averages them, and Griffin-Lim voices the
average. A critic that tells real log-mel patches from predicted ones, trained beside the decoder,
penalises that average (least-squares GAN, plus feature matching on the critic's layers as in
MelGAN / HiFi-GAN, which keeps the adversarial gradient steady).

Both sides train in the model's one forward / backward with the model's one optimizer:

- the critic's loss sees the predicted frames detached, so it trains the critic only;
- the decoder's adversarial and feature-matching losses run the critic with its parameters
  detached (:func:`torch.func.functional_call`), so they train the decoder only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


class FrameCritic(nn.Module):
    """(B, bins, F) log-magnitude frames -> ([feature maps (B, C_i, bins_i, F_i)], (B, 1, bins', F')
    patch scores): 2-D convolutions over (frequency, time), so it judges local spectro-temporal
    shapes (a formant's slope, an onset), not whole utterances."""

    def __init__(self, channels: int = 32):
        super().__init__()
        c = channels
        # (in, out, stride (freq, time)): frequency shrinks 8x, time 2x; each score sees about
        # 22 bands x 11 frames
        shapes = [(1, c, (2, 1)), (c, 2 * c, (2, 2)), (2 * c, 2 * c, (2, 1)), (2 * c, 2 * c, (1, 1))]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, stride=s, padding=1) for i, o, s in shapes)
        self.score = nn.Conv2d(2 * c, 1, 3, padding=1)

    def forward(self, frames: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        # Log magnitudes span about -11.5 (the floor) to +3: a fixed affine map brings them near
        # [-1, 1] so the first layer's initial weights suit them.
        h = (frames.float().unsqueeze(1) + 4.0) / 4.0
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
            features.append(h)
        return features, self.score(h)


def adversarial_losses(critic: FrameCritic, real: torch.Tensor, fake: torch.Tensor,
                       unpaired: torch.Tensor | None = None, one_batch: bool = True) -> dict[str, torch.Tensor]:
    """real, fake (B, bins, F) log frames [, unpaired (B', bins, F') predicted frames with no real
    counterpart, e.g. conversions] -> ``critic_loss`` (trains the critic: real patches -> 1,
    predicted -> 0, least squares), ``gan_loss`` (trains the decoder: predicted -> 1) and
    ``feature_matching_loss`` (trains the decoder: mean L1 between the critic's features of the
    real and the paired predicted frames, averaged over layers). Unpaired frames join the critic
    and GAN terms (each the mean of the paired and the unpaired term), not feature matching.

    The critic runs twice: on every input for its own loss, and with its parameters frozen on the
    predicted frames for the decoder's terms; ``one_batch`` (where the inputs' shapes allow) makes
    each run one batch instead of one call per input, the same numbers to float rounding."""
    fakes = [fake] if unpaired is None else [fake, unpaired]
    judged_by_critic = _judge(critic, [real] + [f.detach() for f in fakes], one_batch)
    (real_features, real_score), critic_scores = judged_by_critic[0], [s for _, s in judged_by_critic[1:]]
    critic_fake = torch.stack([score.pow(2).mean() for score in critic_scores]).mean()
    critic_loss = (real_score - 1).pow(2).mean() + critic_fake
    frozen = {name: p.detach() for name, p in critic.named_parameters()}
    judged = _judge(lambda x: functional_call(critic, frozen, (x,)), fakes, one_batch)
    adversarial = torch.stack([(score - 1).pow(2).mean() for _, score in judged]).mean()
    fake_features = judged[0][0]
    matching = torch.stack([F.l1_loss(f, r.detach()) for f, r in zip(fake_features, real_features)]).mean()
    return {"critic_loss": critic_loss, "gan_loss": adversarial, "feature_matching_loss": matching}


def _judge(critic, inputs: list[torch.Tensor], one_batch: bool) -> list[tuple[list[torch.Tensor], torch.Tensor]]:
    """``critic`` ((N, bins, F) -> (features, scores)) on each of inputs (B_i, bins, F_i) -> its
    (features, scores) per input. With ``one_batch`` and one frame shape, as one call on the
    inputs stacked: the critic's convolutions treat rows independently, so the rows' numbers are
    those of separate calls, to rounding, in fewer, larger convolutions."""
    if not one_batch or len(inputs) == 1 or len({x.shape[1:] for x in inputs}) > 1:
        return [critic(x) for x in inputs]
    sizes = [x.shape[0] for x in inputs]
    features, scores = critic(torch.cat(inputs))
    per_layer = [f.split(sizes) for f in features]
    return [([f[i] for f in per_layer], score) for i, score in enumerate(scores.split(sizes))]
