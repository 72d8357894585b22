"""A speaker encoder trained jointly with the VQ-VAE (``speaker_conditioning: learned``).

The alternative to resemblyzer's pretrained d-vectors (``speaker_conditioning: reference``): the
decoder's voice comes from this network's embedding of *another* utterance of the same speaker,
so what it learns is whatever the decoder needs to restore the voice the codes dropped. It sees
only the training speakers, which is why it is the comparison row and not the default (README:
converting to a voice the model never heard).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .mel import mel_filterbank
from .spectral import log_mel_frames

EMBEDDING_DIM = 256      # the d-vector size, so both reference kinds share the model's projection
_N_FFT, _HOP, _BANDS = 512, 160, 40


class SpeakerEncoder(nn.Module):
    """(B, T) waveform at the model's rate -> (B, 256) unit-norm voice embedding.

    40-band log-mel frames every 10 ms, three dilated convolutions (1, 2, 4; each frame's
    features see 290 ms), then the mean and standard deviation over time (statistics pooling,
    so any length gives one vector), batch-normalised, and a linear layer."""

    def __init__(self, sample_rate: int, channels: int = 128):
        super().__init__()
        self.sample_rate = sample_rate
        self.register_buffer("fbank", mel_filterbank(sample_rate, _N_FFT, _BANDS), persistent=False)
        layers = []
        for i, dilation in enumerate((1, 2, 4)):
            layers += [nn.Conv1d(_BANDS if i == 0 else channels, channels, 5, dilation=dilation, padding=2 * dilation),
                       nn.ReLU(), nn.GroupNorm(1, channels)]
        self.convs = nn.Sequential(*layers)
        # The pooled statistics share a large common part (every voice's ReLU features have
        # similar means); batch normalisation removes it, so what reaches the unit sphere is what
        # tells clips apart, not one direction common to every voice. Running statistics at
        # inference, as x-vector extractors do.
        self.pool_norm = nn.BatchNorm1d(2 * channels, affine=False)
        self.out = nn.Linear(2 * channels, EMBEDDING_DIM, bias=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        frames = log_mel_frames(wav, self.fbank, _N_FFT, _HOP, 1e-5)       # (B, 40, F)
        h = self.convs((frames + 4.0) / 4.0)     # log magnitudes -11.5..3 brought near [-2, 2]
        stats = torch.cat([h.mean(-1), h.std(-1, unbiased=False)], dim=1)
        return F.normalize(self.out(self.pool_norm(stats)), dim=1)

    @torch.no_grad()
    def embed(self, wav: np.ndarray, rate: int) -> np.ndarray:
        """(T,) float waveform at ``rate`` Hz -> (256,) unit-norm embedding (numpy)."""
        if rate != self.sample_rate:
            import librosa

            wav = librosa.resample(np.asarray(wav, dtype=np.float32), orig_sr=rate, target_sr=self.sample_rate)
        x = torch.as_tensor(np.asarray(wav, dtype=np.float32), device=self.fbank.device)[None]
        return self(x)[0].cpu().numpy().astype(np.float32)
