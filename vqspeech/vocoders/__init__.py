"""Vocoders: spectral frames -> audio. ``VOCODERS`` lists the names ``--vocoder`` accepts."""

from __future__ import annotations

import torch

from .griffin_lim import griffin_lim

VOCODERS = ("griffin-lim",)


@torch.no_grad()
def frames_to_audio(model, log_frames: torch.Tensor, vocoder: str = "griffin-lim", seed: int = 0,
                    iterations: int = 32) -> torch.Tensor:
    """(B, bins, F') log-magnitude frames of a spectral model -> (B, F' * frame_hop) audio."""
    if vocoder not in VOCODERS:
        raise ValueError(f"unknown vocoder {vocoder!r}; choose from {', '.join(VOCODERS)}")
    d = model.cfg.decoder_conf
    wav = griffin_lim(model.linear_magnitude(log_frames), d.n_fft, d.frame_hop, iterations=iterations, seed=seed)
    return wav.clamp(-1.0, 1.0)


__all__ = ["VOCODERS", "frames_to_audio", "griffin_lim"]
