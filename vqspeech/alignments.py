"""Phone alignments: Kaldi CTM reading/writing and conversion to frame labels.

A CTM line is ``<utt> <channel> <start> <duration> <phone>`` (seconds). Inside vqspeech
an alignment is a list of :class:`PhoneInterval` per utterance, in time order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AlignmentError
from .fileio import atomic_write


@dataclass(frozen=True)
class PhoneInterval:
    start: float
    end: float
    phone: str


Alignment = dict[str, list[PhoneInterval]]


def read_ctm(path: str | os.PathLike) -> Alignment:
    """Read a CTM file into {utt: [PhoneInterval, ...]} sorted by start time."""
    path = Path(path)
    out: Alignment = {}
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AlignmentError(f"{path}: cannot read ({exc.strerror})") from None
    for no, line in enumerate(raw.splitlines(), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise AlignmentError(f"{path}:{no}: line is not valid UTF-8") from None
        parts = text.split()
        if not parts or parts[0].startswith(";;"):
            continue
        if len(parts) < 5:
            raise AlignmentError(f"{path}:{no}: expected '<utt> <channel> <start> <dur> <phone>', got {text!r}")
        try:
            start, dur = float(parts[2]), float(parts[3])
        except ValueError:
            raise AlignmentError(f"{path}:{no}: start and duration must be numbers, got {text!r}") from None
        if not (start >= 0 and dur > 0 and np.isfinite(start + dur)):
            raise AlignmentError(f"{path}:{no}: need start >= 0 and duration > 0, got {text!r}")
        out.setdefault(parts[0], []).append(PhoneInterval(start, start + dur, parts[4]))
    for utt in out:
        out[utt].sort(key=lambda iv: iv.start)
    return out


def write_ctm(path: str | os.PathLike, alignment: Alignment) -> None:
    """Write {utt: intervals} as a CTM file (utterances in C order), atomically."""
    with atomic_write(path) as fh:
        for utt in sorted(alignment, key=lambda s: s.encode()):
            for iv in alignment[utt]:
                fh.write(f"{utt} 1 {iv.start:.3f} {iv.end - iv.start:.3f} {iv.phone}\n")


def frame_labels(intervals: list[PhoneInterval], num_frames: int, frame_shift: float,
                 fill: str = "sil") -> list[str]:
    """Phone label at the centre of each frame: (num_frames,) list of phones.

    Frame ``i`` covers ``[i * shift, (i + 1) * shift)``; its label is the phone whose
    interval holds the frame centre, ``fill`` where no interval does.
    """
    labels = [fill] * num_frames
    centres = (np.arange(num_frames) + 0.5) * frame_shift
    for iv in intervals:
        lo = int(np.searchsorted(centres, iv.start, side="left"))
        hi = int(np.searchsorted(centres, iv.end, side="left"))
        for i in range(lo, min(hi, num_frames)):
            labels[i] = iv.phone
    return labels
