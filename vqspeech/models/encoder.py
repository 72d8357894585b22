"""Strided 1-D convolutional encoder on the raw waveform (the paper: 6 x (window 4, stride 2))."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import EncoderConfig
from .mel import mel_filterbank
from .perturb import random_tilts, random_warp_factors
from .spectral import log_mel_frames


def instance_normalise(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """(B, D, F) -> (B, D, F), each (utterance, channel) row shifted and scaled to zero mean and
    unit variance over its F frames (no learned affine: the decoder's speaker input puts a voice back)."""
    mean = z.mean(dim=-1, keepdim=True)
    var = z.var(dim=-1, keepdim=True, unbiased=False)
    return (z - mean) * torch.rsqrt(var + eps)


class ConvEncoder(nn.Module):
    """(B, 1, T) waveform -> (B, latent_dim, T // hop) continuous latents.

    With ``input: mel`` the convolutions read log-mel frames (``mel_hop`` samples apart) instead
    of samples: the stack then works at the frame rate, so it can be wide and deep for the cost of
    the paper's waveform stack (``forward`` takes the plain waveform; the caller mu-law compands
    the input only for the waveform encoder, see :attr:`reads_mel`).

    Each layer pads by (kernel - stride) split around the signal, so a length that is a
    multiple of the hop maps to exactly ``T / hop`` frames, frame ``i`` centred on samples
    ``[i * hop, (i + 1) * hop)``. With ``instance_norm`` the latents are normalised per
    utterance (:func:`instance_normalise`): then a frame depends on the whole input, so
    long files encoded in blocks get each block's statistics. ``input_warp`` / ``input_tilt``
    perturb the log-mel input in training mode only (:mod:`.perturb`).
    """

    def __init__(self, cfg: EncoderConfig, sample_rate: int = 16000):
        super().__init__()
        self.cfg = cfg
        self.hop = cfg.hop
        self.reads_mel = cfg.input == "mel"
        self.pads = [((k - s) // 2, (k - s) - (k - s) // 2) for k, s in zip(cfg.kernel_sizes, cfg.strides)]
        layers = []
        in_ch = cfg.mel_bins if self.reads_mel else 1
        fbank = mel_filterbank(sample_rate, cfg.mel_n_fft, cfg.mel_bins) if self.reads_mel else torch.zeros(0)
        self.register_buffer("mel_fbank", fbank, persistent=False)  # derived from the config
        for k, s in zip(cfg.kernel_sizes, cfg.strides):
            layers.append(nn.Conv1d(in_ch, cfg.channels, k, stride=s))
            in_ch = cfg.channels
        self.convs = nn.ModuleList(layers)
        self.residual = nn.ModuleList(
            ResidualConvBlock(cfg.channels, cfg.residual_kernel, 2 ** (i % 4)) for i in range(cfg.residual_layers))
        self.proj = nn.Conv1d(cfg.channels, cfg.latent_dim, 1)
        self.instance_norm = cfg.instance_norm

    def forward(self, wav: torch.Tensor | None, *, log_mel: torch.Tensor | None = None) -> torch.Tensor:
        """(B, [1,] T) waveform -> (B, latent_dim, T // hop); or, for a log-mel encoder, ``log_mel``
        (B, mel_bins, T // mel_hop) natural-log mel frames given directly (``wav`` None, no
        perturbation): what the content-consistency loss feeds it (:mod:`.content_consistency`)."""
        if log_mel is not None:
            if not self.reads_mel:
                raise ValueError("log_mel input needs an encoder with input: mel")
            return self._from_log_mel(log_mel)
        if wav.dim() == 2:
            wav = wav.unsqueeze(1)
        if wav.shape[-1] % self.hop:
            wav = F.pad(wav, (0, self.hop - wav.shape[-1] % self.hop))
        if self.reads_mel:  # (B, 1, T) -> (B, mel_bins, T // mel_hop)
            c = self.cfg
            perturb = self.training and (c.input_warp > 0 or c.input_tilt > 0)
            warp = random_warp_factors(wav.shape[0], c.input_warp, wav.device) if perturb and c.input_warp else None
            x = log_mel_frames(wav[:, 0], self.mel_fbank, c.mel_n_fft, c.mel_hop, 1e-5, warp)
            if perturb and c.input_tilt:
                x = x + random_tilts(wav.shape[0], c.mel_bins, c.input_tilt, device=wav.device)
            return self._from_log_mel(x)
        return self._from_input(wav)

    def _from_log_mel(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self._from_input((log_mel + 5.0) / 4.0)   # scaled to about [-1, 1]

    def _from_input(self, x: torch.Tensor) -> torch.Tensor:
        for conv, pad in zip(self.convs, self.pads):
            x = F.relu(conv(F.pad(x, pad)))
        for block in self.residual:
            x = block(x)
        z = self.proj(x)
        return instance_normalise(z) if self.instance_norm else z

    @property
    def receptive_field(self) -> int:
        """Input samples that one output frame depends on."""
        rf, jump = 1, 1  # in the first convolution's input units (samples, or mel frames)
        for conv in self.convs:
            rf += (conv.kernel_size[0] - 1) * jump
            jump *= conv.stride[0]
        for block in self.residual:
            rf += (block.conv.kernel_size[0] - 1) * block.conv.dilation[0] * jump
        return self.cfg.mel_n_fft + (rf - 1) * self.cfg.mel_hop if self.reads_mel else rf


class ResidualConvBlock(nn.Module):
    """(B, C, F) -> (B, C, F): x + W1(relu(dilated conv(x))), length-preserving."""

    def __init__(self, channels: int, kernel: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.out(F.relu(self.conv(x))))
