"""WaveNet sample generation from codes and a speaker.

:func:`generate_reference` is the cached incremental algorithm of "Fast Wavenet Generation"
(Paine et al. 2016): every dilated layer keeps a queue of its past inputs, so one sample
costs O(layers) work instead of a forward pass over the whole receptive field.  Its
logits equal the training model's teacher-forced logits.  :func:`generate_naive` recomputes
the full forward pass for every sample and exists as the baseline that proves it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .audio import mulaw_decode
from .models import VQVAE


class Sampler:
    """Draws a class from logits: argmax, or softmax(logits / temperature) with a seeded generator."""

    def __init__(self, temperature: float = 1.0, seed: int | None = None, argmax: bool = False,
                 device: str | torch.device = "cpu"):
        if temperature <= 0 and not argmax:
            raise ValueError("temperature must be > 0 (or use argmax)")
        self.temperature = temperature
        self.argmax = argmax
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(0 if seed is None else seed)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, Q) -> (B,) int64."""
        if self.argmax:
            return logits.argmax(-1)
        probs = F.softmax(logits.float() / self.temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(1)


@torch.no_grad()
def generate_reference(model: VQVAE, codes: torch.Tensor, speaker: torch.Tensor, num_samples: int | None = None,
                       sampler: Sampler | None = None, teacher: torch.Tensor | None = None,
                       return_logits: bool = False):
    """Cached incremental generation.

    Args:
        codes: (B, F) code indices.  speaker: (B,) speaker indices.
        num_samples: samples to generate (default F * hop).
        teacher: optional (B, T) classes fed back instead of the samples (for testing).
    Returns:
        (B, T) float waveform, or (classes (B, T), logits (B, Q, T)) when ``return_logits``.
    """
    wn = model.decoder
    hop = model.hop
    B = codes.shape[0]
    T = num_samples or codes.shape[1] * hop
    sampler = sampler or Sampler()
    conds = [c for c in model.codes_to_conditioning(codes, speaker)]  # L x (B, 2G, F)
    R = wn.cfg.residual_channels
    queues = [codes.new_zeros((B, R, layer.dilation), dtype=torch.float32) for layer in wn.layers]
    prev = torch.full((B,), wn.cfg.quantization_channels // 2, dtype=torch.long, device=codes.device)
    out = torch.empty(B, T, dtype=torch.long, device=codes.device)
    all_logits = [] if return_logits else None
    scale = math.sqrt(0.5)
    for t in range(T):
        x = wn.embed(prev)  # (B, R)
        skip = None
        frame = t // hop
        for layer, q, cond in zip(wn.layers, queues, conds):
            slot = t % layer.dilation
            past = q[:, :, slot]
            w = layer.conv.weight  # (2G, R, 2): tap 0 sees t - d, tap 1 sees t
            h = past @ w[:, :, 0].t() + x @ w[:, :, 1].t() + layer.conv.bias + cond[:, :, frame]
            q[:, :, slot] = x
            a, b = h.chunk(2, dim=1)
            z = torch.tanh(a) * torch.sigmoid(b)
            s = z @ layer.skip.weight[:, :, 0].t() + layer.skip.bias
            if layer.res is not None:
                x = (x + z @ layer.res.weight[:, :, 0].t() + layer.res.bias) * scale
            skip = s if skip is None else skip + s
        logits = wn.output(skip.unsqueeze(-1)).squeeze(-1)  # (B, Q)
        if all_logits is not None:
            all_logits.append(logits)
        sample = sampler(logits)
        out[:, t] = sample
        prev = teacher[:, t] if teacher is not None else sample
    if return_logits:
        return out, torch.stack(all_logits, dim=2)
    return mulaw_decode(out, wn.cfg.quantization_channels)


@torch.no_grad()
def generate_naive(model: VQVAE, codes: torch.Tensor, speaker: torch.Tensor, num_samples: int,
                   sampler: Sampler | None = None) -> torch.Tensor:
    """Full recomputation over the receptive field for every sample: (B, num_samples) classes."""
    wn = model.decoder
    sampler = sampler or Sampler()
    c, g = model.conditioning(model.quantizer.lookup(codes), speaker)
    B = codes.shape[0]
    rf = wn.receptive_field
    classes = torch.full((B, 0), 0, dtype=torch.long, device=codes.device)
    for t in range(num_samples):
        lo = max(0, t - rf + 1)
        # Inputs for positions lo..t: the previous samples (mid class before the start).
        targets = torch.cat([classes[:, lo:t], classes.new_zeros(B, 1)], dim=1)
        inputs = wn.shift_inputs(targets) if lo == 0 else torch.cat([classes[:, lo - 1:lo], targets[:, :-1]], 1)
        frames = c[:, :, lo // model.hop:]
        offset = lo % model.hop
        cond_layers = wn.layer_conditioning(frames, g)
        x = wn.embed(inputs).transpose(1, 2)
        skip = None
        n = inputs.shape[1]
        for layer, cond in zip(wn.layers, cond_layers):
            cond = cond.repeat_interleave(model.hop, dim=2)[:, :, offset:offset + n]
            x, s = layer(x, cond)
            skip = s if skip is None else skip + s
        logits = wn.output(skip[:, :, -1:]).squeeze(-1)
        classes = torch.cat([classes, sampler(logits).unsqueeze(1)], dim=1)
    return classes
