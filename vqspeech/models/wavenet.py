"""WaveNet decoder: causal dilated convolutions, gated units, residual and skip connections.

Conditioning (van den Oord et al. 2016, sec. 2.5):
- global: a speaker vector ``g`` (B, speaker_dim), added to every layer's gate input;
- local: code features at the frame rate ``c`` (B, cond_channels, F), upsampled to the
  sample rate by repetition (hop samples per frame).

Because a 1x1 convolution commutes with repetition, each layer projects the conditioning
at the *frame* rate and repeats the result, ``hop`` times fewer multiply-adds than projecting
the upsampled features; :meth:`WaveNet.layer_conditioning` exposes that per-layer frame-rate
tensor so the incremental generator can reuse it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DecoderConfig


class ResidualLayer(nn.Module):
    """One gated residual layer with a kernel-2 causal convolution of dilation ``d``."""

    def __init__(self, cfg: DecoderConfig, dilation: int, last: bool = False):
        super().__init__()
        R, G, S = cfg.residual_channels, cfg.gate_channels, cfg.skip_channels
        self.dilation = dilation
        self.conv = nn.Conv1d(R, 2 * G, kernel_size=2, dilation=dilation)
        self.cond = nn.Conv1d(cfg.cond_channels, 2 * G, 1, bias=False)
        self.speaker = nn.Linear(cfg.speaker_dim, 2 * G, bias=False)
        # The last layer's residual output would feed nothing (and leave DDP with unused weights).
        self.res = None if last else nn.Conv1d(G, R, 1)
        self.skip = nn.Conv1d(G, S, 1)

    def conditioning(self, c: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """(B, C, F) frame features + (B, speaker_dim) -> (B, 2G, F) gate bias at frame rate."""
        return self.cond(c) + self.speaker(g).unsqueeze(-1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, R, T), cond (B, 2G, T) -> (residual out (B, R, T), skip (B, S, T))."""
        h = self.conv(F.pad(x, (self.dilation, 0))) + cond
        a, b = h.chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        x = x if self.res is None else (x + self.res(z)) * math.sqrt(0.5)
        return x, self.skip(z)


class WaveNet(nn.Module):
    """Autoregressive mu-law WaveNet.

    forward: previous samples (B, T) int classes + frame conditioning -> logits (B, Q, T),
    where logits[:, :, t] predicts the class of sample t from samples < t.
    """

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.quantization_channels, cfg.residual_channels)
        dil = cfg.dilations
        self.layers = nn.ModuleList(ResidualLayer(cfg, d, last=i == len(dil) - 1) for i, d in enumerate(dil))
        self.out1 = nn.Conv1d(cfg.skip_channels, cfg.skip_channels, 1)
        self.out2 = nn.Conv1d(cfg.skip_channels, cfg.quantization_channels, 1)

    @property
    def receptive_field(self) -> int:
        return self.cfg.receptive_field

    def shift_inputs(self, targets: torch.Tensor) -> torch.Tensor:
        """(B, T) target classes -> (B, T) inputs: the previous sample, silence (mid class) first."""
        first = torch.full_like(targets[:, :1], self.cfg.quantization_channels // 2)
        return torch.cat([first, targets[:, :-1]], dim=1)

    def layer_conditioning(self, c: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer gate biases at the frame rate: list of (B, 2G, F)."""
        return [layer.conditioning(c, g) for layer in self.layers]

    def output(self, skip: torch.Tensor) -> torch.Tensor:
        """(B, S, T) summed skips -> (B, Q, T) logits."""
        return self.out2(F.relu(self.out1(F.relu(skip))))

    def forward(self, inputs: torch.Tensor, c: torch.Tensor, g: torch.Tensor, hop: int) -> torch.Tensor:
        """inputs (B, T) previous-sample classes, c (B, C, F) with F * hop >= T, g (B, speaker_dim)."""
        T = inputs.shape[1]
        x = self.embed(inputs).transpose(1, 2)
        skip = None
        for layer, cond in zip(self.layers, self.layer_conditioning(c, g)):
            cond = cond.repeat_interleave(hop, dim=2)[:, :, :T]
            x, s = layer(x, cond)
            skip = s if skip is None else skip + s
        return self.output(skip)
