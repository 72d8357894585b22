"""Mel-cepstral distortion with DTW, and log-F0 error on voiced frames.

``mcd_db`` is the voice-conversion literature's MCD: the WORLD spectral envelope (harvest F0,
CheapTrick, 5 ms frames) turned into an SPTK mel-cepstrum (``pysptk.sp2mc``, order 24, all-pass
constant alpha chosen by the sample rate: 0.42 at 16 kHz), c0 (energy) excluded,
MCD = (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2) averaged along the DTW path (Euclidean on
the same 24 coefficients). Figures are comparable with papers that use this recipe.

``filterbank_mcd_db`` is the earlier in-house measure (80-band log-mel + DCT): it reads about
half the literature's value and is kept only under that name, for continuity.
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


# Conventional all-pass constants (SPTK's documentation and the VC literature); other rates use
# pysptk's fit of the mel scale.
MCEP_ALPHA = {8000: 0.31, 16000: 0.42, 22050: 0.455, 24000: 0.466, 44100: 0.544, 48000: 0.554}


def mcep_alpha(sr: int) -> float:
    if sr in MCEP_ALPHA:
        return MCEP_ALPHA[sr]
    return float(require("pysptk").util.mcepalpha(sr))


def world_mel_cepstrum(wav: np.ndarray, sr: int = 16000, order: int = 24, alpha: float | None = None,
                       frame_period_ms: float = 5.0) -> np.ndarray:
    """(T,) -> (frames, order) SPTK mel-cepstra of the WORLD envelope, without c0."""
    pyworld, pysptk = require("pyworld"), require("pysptk")
    x = np.ascontiguousarray(wav, dtype=np.float64)
    f0, t = pyworld.harvest(x, sr, frame_period=frame_period_ms)
    sp = pyworld.cheaptrick(x, f0, t, sr)
    mc = pysptk.sp2mc(sp, order=order, alpha=mcep_alpha(sr) if alpha is None else alpha)
    return mc[:, 1:]


def mel_cepstral_distortion(a: np.ndarray, b: np.ndarray) -> float:
    """MCD (dB) between (n, D) and (m, D) cepstra (c0 already excluded), DTW-aligned."""
    path = dtw_path(a, b)
    diff = a[path[:, 0]] - b[path[:, 1]]
    return float(np.mean(_K * np.sqrt((diff ** 2).sum(1))))


def filterbank_mel_cepstrum(wav: np.ndarray, sr: int = 16000, order: int = 24, n_mels: int = 80) -> np.ndarray:
    """(T,) -> (frames, order) filter-bank 'mel-cepstra' without c0 (the in-house measure)."""
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
    mcd_db: float                 # the literature's MCD (WORLD + SPTK)
    f0_rmse_cents: float | None   # RMSE of log-F0 in cents on frames voiced in both
    f0_corr: float | None
    voiced_frames: int
    filterbank_mcd_db: float | None = None   # the in-house filter-bank measure


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


@dataclass(frozen=True)
class SpectralFeatures:
    """What :func:`compare_features` needs of one utterance, computed once (:func:`spectral_features`):
    ``world`` (frames, order) WORLD mel-cepstra, ``filterbank`` (frames', order) filter-bank
    cepstra, ``f0`` (frames,) F0 on the 5 ms grid (NaN unvoiced) or None when not computed."""
    world: np.ndarray
    filterbank: np.ndarray
    f0: np.ndarray | None


def spectral_features(wav: np.ndarray, sr: int = 16000, order: int = 24, with_f0: bool = True) -> SpectralFeatures:
    """(T,) waveform -> its :class:`SpectralFeatures` (harvest and pYIN dominate: about a second
    for 2 s of audio, so a report computes each real utterance's once)."""
    return SpectralFeatures(world_mel_cepstrum(wav, sr, order), filterbank_mel_cepstrum(wav, sr, order),
                            f0_track(wav, sr) if with_f0 else None)


class FeatureThreads:
    """:func:`spectral_features` on ``threads`` worker threads, so that a report's analysis runs
    beside its conversions: WORLD's harvest, most of the time, releases the GIL. ``submit`` returns
    a future whose ``result()`` is exactly what :func:`spectral_features` returns; with ``threads``
    0 it computes at once. ``close`` waits for what was submitted, or drops it with ``cancel``."""

    def __init__(self, sr: int, threads: int):
        for module in ("pyworld", "pysptk", "librosa"):  # a missing one is an error now, not after the conversions
            require(module)
        self.sr = sr
        self._pool = None
        if threads > 0:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(threads, thread_name_prefix="vc-eval-features")

    def submit(self, wav: np.ndarray):
        if self._pool is not None:
            return self._pool.submit(spectral_features, wav, self.sr)
        from concurrent.futures import Future

        done = Future()
        done.set_result(spectral_features(wav, self.sr))
        return done

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=not cancel, cancel_futures=cancel)


def compare(converted: np.ndarray, target: np.ndarray, sr: int = 16000, order: int = 24,
            with_f0: bool = True) -> SpectralScores:
    """MCD (DTW-aligned) and log-F0 error of ``converted`` against the real ``target``."""
    return compare_features(spectral_features(converted, sr, order, with_f0),
                            spectral_features(target, sr, order, with_f0))


def compare_features(converted: SpectralFeatures, target: SpectralFeatures) -> SpectralScores:
    """:func:`compare` from both utterances' features; the log-F0 error needs both F0 tracks."""
    mcd = mel_cepstral_distortion(converted.world, target.world)
    a, b = converted.filterbank, target.filterbank
    path = dtw_path(a, b)
    fbank_mcd = float(np.mean(_K * np.sqrt(((a[path[:, 0]] - b[path[:, 1]]) ** 2).sum(1))))
    if converted.f0 is None or target.f0 is None:
        return SpectralScores(mcd, None, None, 0, fbank_mcd)
    fa, fb = converted.f0, target.f0
    ia = np.minimum(path[:, 0], len(fa) - 1)
    ib = np.minimum(path[:, 1], len(fb) - 1)
    lx, ly = _voiced_in_both(fa[ia], fb[ib])
    if len(lx) < 3:
        return SpectralScores(mcd, None, None, len(lx), fbank_mcd)
    rmse = float(1200 * np.sqrt(np.mean((lx - ly) ** 2)))
    return SpectralScores(mcd, rmse, _pearson(lx, ly), len(lx), fbank_mcd)


def _voiced_in_both(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two F0 tracks on one grid (NaN unvoiced) -> their log2 F0 on the frames voiced in both."""
    both = ~np.isnan(x) & ~np.isnan(y)
    return np.log2(x[both]), np.log2(y[both])


def _pearson(lx: np.ndarray, ly: np.ndarray) -> float | None:
    """Pearson correlation, None when either side is flat."""
    return float(np.corrcoef(lx, ly)[0, 1]) if lx.std() > 0 and ly.std() > 0 else None


def source_f0_correlation(converted_f0: np.ndarray | None, source_f0: np.ndarray | None) -> float | None:
    """Pearson correlation of log F0 between a conversion and its source, frame for frame (conversion
    keeps the source's timing, so no alignment), on the frames voiced in both: how much of the
    source's intonation the conversion keeps. None without both tracks, with under 3 such frames or
    a flat track."""
    if converted_f0 is None or source_f0 is None:
        return None
    n = min(len(converted_f0), len(source_f0))
    lx, ly = _voiced_in_both(converted_f0[:n], source_f0[:n])
    return _pearson(lx, ly) if len(lx) >= 3 else None
