"""Strided 1-D convolutional encoder on the raw waveform (the paper: 6 x (window 4, stride 2))."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import EncoderConfig


class ConvEncoder(nn.Module):
    """(B, 1, T) waveform -> (B, latent_dim, T // hop) continuous latents.

    Each layer pads by (kernel - stride) split around the signal, so a length that is a
    multiple of the hop maps to exactly ``T / hop`` frames, frame ``i`` centred on samples
    ``[i * hop, (i + 1) * hop)``.
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.hop = cfg.hop
        self.pads = [((k - s) // 2, (k - s) - (k - s) // 2) for k, s in zip(cfg.kernel_sizes, cfg.strides)]
        layers = []
        in_ch = 1
        for k, s in zip(cfg.kernel_sizes, cfg.strides):
            layers.append(nn.Conv1d(in_ch, cfg.channels, k, stride=s))
            in_ch = cfg.channels
        self.convs = nn.ModuleList(layers)
        self.proj = nn.Conv1d(cfg.channels, cfg.latent_dim, 1)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() == 2:
            wav = wav.unsqueeze(1)
        if wav.shape[-1] % self.hop:
            wav = F.pad(wav, (0, self.hop - wav.shape[-1] % self.hop))
        x = wav
        for conv, pad in zip(self.convs, self.pads):
            x = F.relu(conv(F.pad(x, pad)))
        return self.proj(x)
