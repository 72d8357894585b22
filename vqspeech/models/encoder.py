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
        self.residual = nn.ModuleList(
            ResidualConvBlock(cfg.channels, cfg.residual_kernel, 2 ** (i % 4)) for i in range(cfg.residual_layers))
        self.proj = nn.Conv1d(cfg.channels, cfg.latent_dim, 1)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() == 2:
            wav = wav.unsqueeze(1)
        if wav.shape[-1] % self.hop:
            wav = F.pad(wav, (0, self.hop - wav.shape[-1] % self.hop))
        x = wav
        for conv, pad in zip(self.convs, self.pads):
            x = F.relu(conv(F.pad(x, pad)))
        for block in self.residual:
            x = block(x)
        return self.proj(x)

    @property
    def receptive_field(self) -> int:
        """Input samples that one output frame depends on."""
        rf, jump = 1, 1
        for conv in self.convs:
            rf += (conv.kernel_size[0] - 1) * jump
            jump *= conv.stride[0]
        for block in self.residual:
            rf += (block.conv.kernel_size[0] - 1) * block.conv.dilation[0] * jump
        return rf


class ResidualConvBlock(nn.Module):
    """(B, C, F) -> (B, C, F): x + W1(relu(dilated conv(x))), length-preserving."""

    def __init__(self, channels: int, kernel: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.out(F.relu(self.conv(x))))
