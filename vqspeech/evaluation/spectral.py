"""Mel-cepstral distortion with DTW, and log-F0 error on voiced frames.

Mel-cepstra: an 80-band log-mel spectrum (natural-log amplitude, 25 ms windows, 5 ms hop)
turned into the real cepstrum of its even extension (DCT-II / 2N, the scale of a cepstrum
computed by inverse FFT); coefficients 1..order (c0, the energy, is excluded).  MCD = (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2) in dB, averaged along the
DTW path between the two utterances.  These mel-cepstra come from a filter bank rather
than SPTK's all-pass warping, so absolute values are comparable within this toolkit, not
with papers that use SPTK mcep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft

from .deps import require

HOP = 80        # 5 ms at 16 kHz
N_FFT = 400     # 25 ms
_K = 10.0 / math.log(10.0) * math.sqrt(2.0)


def mel_cepstrum(wav: np.ndarray, sr: int = 16000, order: int = 24, n_mels: int = 80) -> np.ndarray:
    """(T,) -> (frames, order) mel-cepstra without c0."""
    librosa = require("librosa")
    mel = librosa.feature.melspectrogram(y=wav.astype(np.float32), sr=sr, n_fft=N_FFT, hop_length=HOP,
                                         n_mels=n_mels, power=2.0, center=True)
    log_amp = 0.5 * np.log(np.maximum(mel, 1e-10))
    cep = scipy.fft.dct(log_amp, type=2, norm=None, axis=0) / (2 * n_mels)
    return cep[1:order + 1].T.astype(np.float64)


def dtw_path(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean DTW between (n, D) and (m, D): (L, 2) index pairs."""
    librosa = require("librosa")
    _, wp = librosa.sequence.dtw(X=a.T, Y=b.T, metric="euclidean")
    return wp[::-1]


@dataclass
class SpectralScores:
    mcd_db: float
    f0_rmse_cents: float | None   # RMSE of log-F0 in cents on frames voiced in both
    f0_corr: float | None
    voiced_frames: int


def f0_track(wav: np.ndarray, sr: int = 16000) -> np.ndarray:
    """(frames,) F0 in Hz with NaN on unvoiced frames, on the cepstra's 5 ms grid.

    pYIN runs at a 10 ms hop and half-semitone resolution (12x faster than its defaults,
    still far finer than the errors measured) and is repeated onto the 5 ms grid.
    """
    librosa = require("librosa")
    f0, voiced, _ = librosa.pyin(wav.astype(np.float32), fmin=60, fmax=500, sr=sr, frame_length=1024,
                                 hop_length=2 * HOP, center=True, resolution=0.5)
    f0[~voiced] = np.nan
    return np.repeat(f0, 2)


def compare(converted: np.ndarray, target: np.ndarray, sr: int = 16000, order: int = 24,
            with_f0: bool = True) -> SpectralScores:
    """MCD (DTW-aligned) and log-F0 error of ``converted`` against the real ``target``."""
    a, b = mel_cepstrum(converted, sr, order), mel_cepstrum(target, sr, order)
    path = dtw_path(a, b)
    diff = a[path[:, 0]] - b[path[:, 1]]
    mcd = float(np.mean(_K * np.sqrt((diff ** 2).sum(1))))
    if not with_f0:
        return SpectralScores(mcd, None, None, 0)
    fa, fb = f0_track(converted, sr), f0_track(target, sr)
    ia = np.minimum(path[:, 0], len(fa) - 1)
    ib = np.minimum(path[:, 1], len(fb) - 1)
    x, y = fa[ia], fb[ib]
    both = ~np.isnan(x) & ~np.isnan(y)
    if both.sum() < 3:
        return SpectralScores(mcd, None, None, int(both.sum()))
    lx, ly = np.log2(x[both]), np.log2(y[both])
    rmse = float(1200 * np.sqrt(np.mean((lx - ly) ** 2)))
    corr = float(np.corrcoef(lx, ly)[0, 1]) if lx.std() > 0 and ly.std() > 0 else None
    return SpectralScores(mcd, rmse, corr, int(both.sum()))
