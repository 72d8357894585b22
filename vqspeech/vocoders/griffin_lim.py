"""Griffin-Lim phase reconstruction (training-free vocoder), on torch.stft / torch.istft.

The fast variant (Perraudin, Balazs, Sondergaard 2013): each iteration projects onto
consistent spectrograms (istft then stft) and onto the given magnitude, with a momentum
term that speeds convergence; ``momentum=0`` is the original Griffin & Lim (1984).
"""

from __future__ import annotations

import torch


def griffin_lim(magnitude: torch.Tensor, n_fft: int, hop: int, iterations: int = 32, momentum: float = 0.99,
                length: int | None = None, seed: int = 0) -> torch.Tensor:
    """(B, n_fft // 2 + 1, F) linear magnitude -> (B, length) waveform (default ``F * hop``).

    The frames follow :func:`vqspeech.models.spectral.log_magnitude`'s layout (frame ``i``
    centred on sample ``i * hop``). Phases start random from ``seed``: the same seed gives the
    same audio.
    """
    if magnitude.dim() != 3 or magnitude.shape[1] != n_fft // 2 + 1:
        raise ValueError(f"magnitude must be (B, {n_fft // 2 + 1}, F), got {tuple(magnitude.shape)}")
    B, _, frames = magnitude.shape
    length = frames * hop if length is None else length
    # One extra frame so that istft(center=True) covers ``frames * hop`` samples.
    mag = torch.cat([magnitude, magnitude[..., -1:]], dim=-1).float()
    window = torch.hann_window(n_fft, device=mag.device)
    g = torch.Generator(device="cpu").manual_seed(seed)
    angles = torch.polar(torch.ones_like(mag.cpu()), 2 * torch.pi * torch.rand(mag.shape, generator=g)).to(mag.device)
    n_out = (mag.shape[-1] - 1) * hop
    previous = torch.zeros_like(angles)
    for _ in range(iterations):
        wav = torch.istft(mag * angles, n_fft, hop, window=window, center=True, length=n_out)
        rebuilt = torch.stft(wav, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)
        angles = rebuilt - (momentum / (1 + momentum)) * previous
        previous = rebuilt
        angles = angles / angles.abs().clamp(min=1e-16)
    wav = torch.istft(mag * angles, n_fft, hop, window=window, center=True, length=n_out)
    if wav.shape[-1] < length:
        wav = torch.nn.functional.pad(wav, (0, length - wav.shape[-1]))
    return wav[..., :length]
