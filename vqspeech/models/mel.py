"""Mel filter bank (Slaney's auditory toolbox scale and area normalisation, as librosa's default)
and its non-negative inverse, in torch so that training and synthesis share one definition."""

from __future__ import annotations

import math

import torch


def _hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale: linear below 1 kHz (3 mels / 200 Hz), logarithmic above."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = math.log(6.4) / 27.0
    lin = f / f_sp
    return torch.where(f >= min_log_hz, min_log_hz / f_sp + torch.log(f.clamp(min=1e-10) / min_log_hz) / logstep, lin)


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return torch.where(m >= min_log_mel, min_log_hz * torch.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters, each normalised to unit area (Slaney)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = _mel_to_hz(torch.linspace(float(_hz_to_mel(torch.tensor(fmin, dtype=torch.float64))),
                                      float(_hz_to_mel(torch.tensor(fmax, dtype=torch.float64))), n_mels + 2,
                                      dtype=torch.float64))
    widths = edges[1:] - edges[:-1]
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0)
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.float()


def mel_to_linear(mel: torch.Tensor, fbank: torch.Tensor, iterations: int = 50) -> torch.Tensor:
    """(B, n_mels, F) mel magnitudes -> (B, n_fft // 2 + 1, F) non-negative linear magnitudes.

    The least-squares solution of ``fbank @ x = mel`` with ``x >= 0``, by multiplicative
    updates (Lee & Seung 2001), which keep x non-negative and converge monotonically.
    """
    fb = fbank.to(mel.device, mel.dtype)
    target = fb.t() @ mel                  # (B, bins, F)
    x = target.clamp(min=1e-8)
    for _ in range(iterations):
        x = x * target / (fb.t() @ (fb @ x)).clamp(min=1e-12)
    return x
