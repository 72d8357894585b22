"""Spectral decoder: codes + speaker -> log-magnitude STFT frames, non-autoregressive.

All frames are predicted at once by a stack of residual convolutions at the frame rate, so
training costs a few convolutions per frame instead of a WaveNet per sample, and decoding a
10 s utterance is one forward pass. A vocoder (:mod:`vqspeech.vocoders`) turns the frames
into audio.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import SpectralDecoderConfig
from ..pitch import PITCH_CHANNELS, unknown_pitch
from .perturb import warp_frequencies


def log_magnitude(wav: torch.Tensor, n_fft: int, frame_hop: int, floor: float) -> torch.Tensor:
    """(B, T) waveform -> (B, n_fft // 2 + 1, T // frame_hop) natural-log STFT magnitude.

    Hann window of ``n_fft`` samples, frame ``i`` centred on sample ``i * frame_hop``
    (``torch.stft(center=True)``); the frame past the end is dropped so a length that is a
    multiple of the hop gives exactly ``T / frame_hop`` frames, like the encoder.
    """
    window = torch.hann_window(n_fft, device=wav.device, dtype=torch.float32)
    spec = torch.stft(wav.float(), n_fft, frame_hop, window=window, center=True, pad_mode="reflect",
                      return_complex=True)
    return spec.abs().clamp(min=floor).log()[..., : wav.shape[-1] // frame_hop]


def log_mel_frames(wav: torch.Tensor, fbank: torch.Tensor, n_fft: int, frame_hop: int, floor: float,
                   warp: torch.Tensor | None = None) -> torch.Tensor:
    """(B, T) waveform -> (B, n_mels, T // frame_hop) natural-log mel magnitudes, ``fbank``
    (n_mels, n_fft // 2 + 1) applied to :func:`log_magnitude`'s frames, floored at ``floor``.
    The spectral decoder's regression target and the WaveNet vocoder's input. ``warp`` (B,)
    scales each row's frequency axis first (:func:`vqspeech.models.perturb.warp_frequencies`)."""
    # float32 under autocast too: these are targets and features, and bf16's 8 bits of mantissa
    # would round the mel product before the log
    with torch.autocast(wav.device.type, enabled=False):
        mag = log_magnitude(wav, n_fft, frame_hop, 1e-12).exp()
        if warp is not None:
            mag = warp_frequencies(mag, warp)
        return (fbank.to(mag.device) @ mag).clamp(min=floor).log()


class FiLMResBlock(nn.Module):
    """(B, C, F) -> (B, C, F): x + conv(gelu(norm(x) * (1 + scale(g)) + shift(g)))."""

    def __init__(self, channels: int, kernel: int, dilation: int, speaker_dim: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.GroupNorm(1, channels)
        self.film = nn.Linear(speaker_dim, 2 * channels)
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(g).unsqueeze(-1).chunk(2, dim=1)
        h = self.norm(x) * (1 + scale) + shift
        return x + self.out(self.dropout(F.gelu(self.conv(F.gelu(h)))))


class SpectralDecoder(nn.Module):
    """(B, D, F) code vectors at the code rate + (B, speaker_dim) speaker vectors [+ (B, 3, F') source
    pitch features at the frame rate, ``source_pitch`` models] -> (B, bins, F' = F * code_hop //
    frame_hop) log-magnitude frames (mel or linear bins)."""

    def __init__(self, cfg: SpectralDecoderConfig, latent_dim: int, code_hop: int):
        super().__init__()
        self.cfg = cfg
        self.code_hop = code_hop
        C = cfg.channels
        self.bins = cfg.n_mels if cfg.features == "mel" else cfg.n_fft // 2 + 1
        self.pre = nn.Conv1d(latent_dim, C, 3, padding=1)
        if cfg.frame_hop > code_hop:       # several codes per frame: a strided conv merges them
            r = cfg.frame_hop // code_hop
            self.resample = nn.Conv1d(C, C, 2 * r, stride=r, padding=r // 2)
        elif cfg.frame_hop < code_hop:     # several frames per code: a transposed conv spreads them
            r = code_hop // cfg.frame_hop
            self.resample = nn.ConvTranspose1d(C, C, 2 * r, stride=r, padding=r // 2)
        else:
            self.resample = nn.Identity()
        # source pitch (vqspeech.pitch.pitch_features) added at the frame rate, before the blocks
        self.pitch_in = nn.Conv1d(PITCH_CHANNELS, C, 5, padding=2) if cfg.source_pitch else None
        self.blocks = nn.ModuleList(FiLMResBlock(C, cfg.kernel_size, 2 ** (i % 3), cfg.speaker_dim, cfg.dropout)
                                    for i in range(cfg.layers))
        self.post = nn.Sequential(nn.GroupNorm(1, C), nn.GELU(), nn.Conv1d(C, self.bins, 1))

    def num_frames(self, num_codes: int) -> int:
        return num_codes * self.code_hop // self.cfg.frame_hop

    def forward(self, z_q: torch.Tensor, g: torch.Tensor, pitch: torch.Tensor | None = None) -> torch.Tensor:
        """``pitch`` None on a ``source_pitch`` model: unknown (all zeros); frames past its end are
        unknown too, and a pitch given to a model without it is ignored."""
        n = self.num_frames(z_q.shape[-1])
        x = self.resample(F.gelu(self.pre(z_q)))
        x = x[..., :n]
        if x.shape[-1] < n:  # odd strides: pad by repeating the edge
            x = F.pad(x, (0, n - x.shape[-1]), mode="replicate")
        if self.pitch_in is not None:
            p = unknown_pitch(x.shape[0], n, x.device).to(x.dtype)
            if pitch is not None:
                m = min(n, pitch.shape[-1])
                p[..., :m] = pitch[..., :m].to(p.dtype)
            x = x + self.pitch_in(p)
        for block in self.blocks:
            x = block(x, g)
        return self.post(x)
