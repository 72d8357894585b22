"""Audio input/output and mu-law companding.

All audio inside vqspeech is mono float32 in [-1, 1] at one sample rate (16 kHz by
default).  Loading accepts whatever soundfile reads (wav, flac, ogg, ...), any
channel count, any sample rate and any sample format, and converts.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .errors import AudioError
from .fileio import atomic_path

DEFAULT_SAMPLE_RATE = 16000


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited polyphase resampling of a 1-D signal, (T,) -> (T * target/orig,)."""
    if orig_sr == target_sr:
        return wav
    from scipy.signal import resample_poly

    g = math.gcd(orig_sr, target_sr)
    out = resample_poly(wav.astype(np.float64), target_sr // g, orig_sr // g)
    return out.astype(np.float32)


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """Return (frames, sample_rate, channels) of an audio file without decoding it."""
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises RuntimeError / LibsndfileError / TypeError
        raise AudioError(f"{path}: cannot read audio ({_short(exc)})") from None
    return info.frames, info.samplerate, info.channels


def _require_file(path: Path) -> None:
    """Raise AudioError unless ``path`` is an existing file (a directory is named as one)."""
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")


def load_audio(path: str | os.PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE,
               start: float = 0.0, end: float | None = None) -> np.ndarray:
    """Load an audio file as mono float32 at ``sample_rate``.

    Args:
        path: wav / flac / anything libsndfile reads.
        sample_rate: target rate; the file is resampled when it differs.
        start, end: optional segment in seconds (Kaldi ``segments``); ``end=None`` reads to the end.

    Returns:
        (T,) float32 array in [-1, 1].

    Raises:
        AudioError: the file is missing, unreadable, corrupt, empty, or holds NaN/inf.
    """
    path = Path(path)
    _require_file(path)
    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            first = int(round(start * sr))
            if first > f.frames:
                raise AudioError(f"{path}: segment start {start:.3f}s is past the end of the file "
                                 f"({f.frames / sr:.3f}s)")
            f.seek(first)
            count = -1 if end is None else max(0, int(round(end * sr)) - first)
            data = f.read(count, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{path}: cannot read audio ({_short(exc)})") from None
    if end is not None and first + data.shape[0] < int(round(end * sr)) - 1:
        raise AudioError(f"{path}: segment end {end:.3f}s is past the end of the file "
                         f"({(first + data.shape[0]) / sr:.3f}s)")
    if data.size == 0:
        raise AudioError(f"{path}: audio is empty (zero samples)")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return resample(np.ascontiguousarray(mono, dtype=np.float32), sr, sample_rate)


def save_audio(path: str | os.PathLike, wav: np.ndarray | torch.Tensor,
               sample_rate: int = DEFAULT_SAMPLE_RATE) -> None:
    """Write a mono float signal (T,) as 16-bit PCM (format from the suffix), atomically."""
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().float().numpy()
    wav = np.clip(np.asarray(wav, dtype=np.float32).reshape(-1), -1.0, 1.0)
    path = Path(path)
    fmt = (path.suffix.lstrip(".") or "wav").upper()
    with atomic_path(path) as tmp:
        sf.write(str(tmp), wav, sample_rate, subtype="PCM_16", format=fmt)


def mulaw_compress(x: torch.Tensor | np.ndarray, mu: int = 255):
    """Mu-law companding without quantisation: float in [-1, 1] -> float in [-1, 1] (same shape)."""
    if isinstance(x, np.ndarray):
        x = np.clip(x, -1.0, 1.0)
        return np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    x = x.clamp(-1.0, 1.0)
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def mulaw_encode(x: torch.Tensor | np.ndarray, quantization_channels: int = 256):
    """Mu-law compand and quantise: float in [-1, 1] -> int64 class in [0, Q-1] (same shape)."""
    mu = quantization_channels - 1
    y = mulaw_compress(x, mu)
    if isinstance(y, np.ndarray):
        return np.floor((y + 1) / 2 * mu + 0.5).astype(np.int64)
    return torch.floor((y + 1) / 2 * mu + 0.5).long()


def mulaw_decode(q: torch.Tensor | np.ndarray, quantization_channels: int = 256):
    """Inverse of :func:`mulaw_encode`: int class in [0, Q-1] -> float in [-1, 1] (same shape)."""
    mu = quantization_channels - 1
    if isinstance(q, np.ndarray):
        y = 2 * q.astype(np.float32) / mu - 1
        return (np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu).astype(np.float32)
    y = 2 * q.float() / mu - 1
    return torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def stream_audio(path: str | os.PathLike, sample_rate: int, block: int, margin: int, multiple: int = 1):
    """Read a long file as overlapping mono blocks at ``sample_rate``, in bounded memory.

    Yields ``(offset, owned, samples)``: ``samples`` covers output samples
    ``[offset - margin, offset + block + margin)`` clipped to the signal, of which the block
    owns ``[offset, offset + owned)``; ``offset`` advances by ``block`` (rounded to a multiple
    of ``multiple`` and of the resampling period).  Each block is resampled with its own input margin, and block edges sit on
    exact common multiples of both rates, so the concatenated centres equal resampling the
    whole file (up to filter-edge rounding far inside the margin).

    Raises AudioError like :func:`load_audio`.
    """
    path = Path(path)
    _require_file(path)
    try:
        f = sf.SoundFile(str(path))
    except Exception as exc:
        raise AudioError(f"{path}: cannot read audio ({_short(exc)})") from None
    with f:
        sr = f.samplerate
        if f.frames == 0:
            raise AudioError(f"{path}: audio is empty (zero samples)")
        g = math.gcd(sr, sample_rate)
        up, down = sample_rate // g, sr // g
        step = math.lcm(up, multiple)
        block = max(step, block // step * step)
        in_margin = (margin + up - 1) // up * down + 64 * down  # extra input for the filter edges
        total_out = math.ceil(f.frames * up / down)
        offset = 0
        while offset < total_out:
            lo_out = max(0, offset - margin)
            hi_out = min(total_out, offset + block + margin)
            lo_in = max(0, (offset * down) // up - in_margin)
            lo_in -= lo_in % down  # an input sample that maps exactly onto an output sample
            hi_in = min(f.frames, ((offset + block) * down) // up + in_margin)
            f.seek(lo_in)
            try:
                data = f.read(hi_in - lo_in, dtype="float32", always_2d=True)
            except Exception as exc:
                raise AudioError(f"{path}: cannot read audio ({_short(exc)})") from None
            if not np.isfinite(data).all():
                raise AudioError(f"{path}: audio contains NaN or infinite samples")
            mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            res = resample(np.ascontiguousarray(mono, dtype=np.float32), sr, sample_rate)
            first = lo_in * up // down
            yield offset, min(block, total_out - offset), res[lo_out - first:hi_out - first]
            offset += block
