"""Information perturbation of the encoder's input (training only): the log-mel encoder reads a
randomly re-voiced copy of each crop while the decoder still reconstructs the original frames with
the original speaker vector, so whatever the perturbation changes (formant and pitch scale, the
spectral envelope's slope) cannot help the reconstruction through the codes and is better left to
the speaker input (the idea behind NANSY, Choi et al. 2021, and ContentVec, Qian et al. 2022).

- :func:`warp_frequencies` scales the frequency axis of a linear magnitude spectrogram, which moves
  formants and harmonics together (a vocal-tract length and pitch change, VTLP-style);
- :func:`random_tilts` draws smooth random curves over the mel bands (an equaliser) to add to
  log-mel frames.
"""

from __future__ import annotations

import math

import torch


def random_warp_factors(batch: int, max_warp: float, device=None, generator=None) -> torch.Tensor:
    """(batch,) factors log-uniform in [1 / (1 + max_warp), 1 + max_warp]."""
    u = torch.rand(batch, generator=generator, device="cpu").to(device)
    return torch.exp((2 * u - 1) * math.log1p(max_warp))


def warp_frequencies(mag: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """(B, K, F) linear magnitudes, (B,) factors -> (B, K, F) with bin ``k`` of row ``b`` read from
    fractional bin ``k / factors[b]`` (linear interpolation); bins read from above the top bin are
    silent. A factor of 2 moves a peak at bin k to bin 2k; a factor of 1 returns ``mag`` unchanged."""
    B, K, _ = mag.shape
    pos = torch.arange(K, device=mag.device, dtype=torch.float32)[None, :] / factors.to(mag.device, torch.float32)[:, None]
    lo = pos.floor().clamp(max=K - 1)
    frac = (pos - lo).clamp(max=1.0)
    lo_i = lo.long()
    hi_i = (lo_i + 1).clamp(max=K - 1)
    inside = (pos <= K - 1).to(mag.dtype)                          # (B, K)
    take = lambda idx: mag.gather(1, idx[..., None].expand(B, K, mag.shape[-1]))  # noqa: E731
    out = take(lo_i) * (1 - frac)[..., None] + take(hi_i) * frac[..., None]
    return out * inside[..., None]


def random_tilts(batch: int, bins: int, scale: float, components: int = 3, device=None, generator=None) -> torch.Tensor:
    """(batch, bins, 1) smooth random curves over the bands: a sum of ``components`` cosines of
    0.5 to ``components / 2`` periods across the band axis with random phases, amplitudes normal
    with standard deviation ``scale`` (natural-log units: 0.5 is about +-4 dB)."""
    x = torch.linspace(0, 1, bins)
    amp = torch.randn(batch, components, generator=generator) * scale
    phase = torch.rand(batch, components, generator=generator) * 2 * math.pi
    freq = 0.5 * torch.arange(1, components + 1, dtype=torch.float32)
    curves = (amp[..., None] * torch.cos(2 * math.pi * freq[None, :, None] * x + phase[..., None])).sum(1)
    return curves[..., None].to(device)
