"""The decoder's weights laid out for one cached sample step, written once for every backend.

A WaveNet layer at sample t computes, for its input x_t (R,) and the input d samples back:

    h = x_{t-d} @ w_past + x_t @ w_cur + cond[frame]          (2G,)  (conv bias folded into cond)
    z = tanh(h[:G]) * sigmoid(h[G:])                          (G,)
    skip += z @ w_skip + b_skip                               (S,)
    x_next = (x_t + z @ w_res + b_res) * sqrt(1/2)            (R,)   (zeros for the last layer)

and the output is ``relu(relu(skip) @ w1 + b1) @ w2 + b2`` (Q,).  Matrices are stored
(in, out) so a row vector multiplies from the left.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch


@dataclass
class StepWeights:
    """Shapes: embed (Q, R); w_past, w_cur (L, R, 2G); b_conv (L, 2G); w_skip (L, G, S);
    b_skip (L, S); w_res (L, G, R); b_res (L, R); w1 (S, S); b1 (S,); w2 (S, Q); b2 (Q,);
    dilations (L,) int64.  The last layer's residual weights are zeros (its output feeds nothing)."""

    embed: torch.Tensor
    w_past: torch.Tensor
    w_cur: torch.Tensor
    b_conv: torch.Tensor
    w_skip: torch.Tensor
    b_skip: torch.Tensor
    w_res: torch.Tensor
    b_res: torch.Tensor
    w1: torch.Tensor
    b1: torch.Tensor
    w2: torch.Tensor
    b2: torch.Tensor
    dilations: torch.Tensor

    @classmethod
    @torch.no_grad()
    def from_decoder(cls, wn) -> "StepWeights":
        """From a :class:`vqspeech.models.wavenet.WaveNet`, on its device, float32, contiguous."""
        layers = list(wn.layers)
        R = wn.cfg.residual_channels
        G = wn.cfg.gate_channels

        def stack(ts):
            return torch.stack([t.detach().float() for t in ts]).contiguous()

        def res(layer, weight: bool):
            if layer.res is None:
                return layer.skip.weight.new_zeros((G, R) if weight else (R,))
            return layer.res.weight[:, :, 0].t() if weight else layer.res.bias

        return cls(
            embed=wn.embed.weight.detach().float().contiguous(),
            w_past=stack(l.conv.weight[:, :, 0].t() for l in layers),
            w_cur=stack(l.conv.weight[:, :, 1].t() for l in layers),
            b_conv=stack(l.conv.bias for l in layers),
            w_skip=stack(l.skip.weight[:, :, 0].t() for l in layers),
            b_skip=stack(l.skip.bias for l in layers),
            w_res=stack(res(l, True) for l in layers),
            b_res=stack(res(l, False) for l in layers),
            w1=wn.out1.weight[:, :, 0].t().detach().float().contiguous(), b1=wn.out1.bias.detach().float(),
            w2=wn.out2.weight[:, :, 0].t().detach().float().contiguous(), b2=wn.out2.bias.detach().float(),
            dilations=torch.tensor([l.dilation for l in layers], dtype=torch.long),
        )

    @property
    def num_layers(self) -> int:
        return int(self.dilations.shape[0])

    @property
    def queue_offsets(self) -> torch.Tensor:
        """(L + 1,) int64: layer l's queue slots are rows offsets[l] .. offsets[l+1]-1 of one
        (sum of dilations, B, R) buffer."""
        return torch.cat([torch.zeros(1, dtype=torch.long), self.dilations.cumsum(0)])

    def numpy(self) -> dict[str, np.ndarray]:
        """Every field as a C-contiguous numpy array (float32, dilations int64)."""
        return {f.name: np.ascontiguousarray(getattr(self, f.name).cpu().numpy()) for f in fields(self)}


def frame_conditioning(model, codes: torch.Tensor, speaker: torch.Tensor, b_conv: torch.Tensor) -> torch.Tensor:
    """(B, F) codes, (B,) speakers -> (L, B, F, 2G) float32 per-layer gate biases at the frame rate,
    ``b_conv`` (L, 2G) (:attr:`StepWeights.b_conv`) folded in; contiguous."""
    with torch.no_grad():
        conds = torch.stack(model.codes_to_conditioning(codes, speaker)).float()  # (L, B, 2G, F)
        return (conds.transpose(2, 3) + b_conv.to(conds.device)[:, None, None, :]).contiguous()
