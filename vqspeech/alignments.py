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
from .fileio import atomic_path, atomic_write


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
                # Round the two ends, not start and duration apart: 0.5265 + 0.0950 written as
                # 0.527 + 0.095 would end 1 ms after the next phone (0.621) starts.
                start, end = round(iv.start, 3), round(iv.end, 3)
                fh.write(f"{utt} 1 {start:.3f} {end - start:.3f} {iv.phone}\n")


def remove_overlaps(intervals: list[PhoneInterval]) -> tuple[list[PhoneInterval], int]:
    """Sorted intervals where each that starts before the previous one ends starts at that end
    instead (one left empty is dropped); returns (intervals, how many were changed). Differences
    below a microsecond are float noise of start + duration sums, not overlaps."""
    out: list[PhoneInterval] = []
    changed = 0
    for iv in sorted(intervals, key=lambda v: (v.start, v.end)):
        if out and iv.start < out[-1].end - 1e-6:
            changed += 1
            if iv.end <= out[-1].end:
                continue
            iv = PhoneInterval(out[-1].end, iv.end, iv.phone)
        out.append(iv)
    return out, changed


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


# ---------------------------------------------------------------------------------------------
# Other formats: Praat TextGrid, TIMIT .PHN, HTK/HTS .lab


def _read_text(path: Path) -> str:
    raw = Path(path).read_bytes()
    for enc in ("utf-8", "utf-16"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise AlignmentError(f"{path}: not UTF-8 or UTF-16 text")


def read_textgrid(path: str | os.PathLike, tier: str = "phones") -> list[PhoneInterval]:
    """Intervals of the named interval tier of a Praat TextGrid (long or short text format, UTF-8
    or UTF-16), read with praatio. Empty labels (Praat's unlabelled gaps) are skipped; labels are
    kept exactly as written (``a[1]`` stays ``a[1]``)."""
    from praatio import textgrid as tgio

    path = Path(path)
    if not path.is_file():
        raise AlignmentError(f"{path}: TextGrid not found")
    try:
        tg = tgio.openTextgrid(str(path), includeEmptyIntervals=False, reportingMode="silence")
    except Exception as exc:  # praatio raises many types for malformed input; all mean "not a TextGrid"
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise AlignmentError(f"{path}: malformed TextGrid ({first})") from None
    if tier not in tg.tierNames:
        interval = [n for n in tg.tierNames if isinstance(tg.getTier(n), tgio.IntervalTier)]
        if not interval:
            raise AlignmentError(f"{path}: no interval tier in this TextGrid")
        raise AlignmentError(f"{path}: no interval tier named {tier!r} (tiers: {', '.join(tg.tierNames)})")
    found = tg.getTier(tier)
    if not isinstance(found, tgio.IntervalTier):
        raise AlignmentError(f"{path}: tier {tier!r} is a point tier, not an interval tier")
    return [PhoneInterval(float(e.start), float(e.end), e.label.strip()) for e in found.entries if e.label.strip()]


def check_tier(name: str, intervals: list[PhoneInterval], duration: float) -> list[PhoneInterval]:
    """The intervals of one tier sorted by start, clipped to ``duration``; AlignmentError when two
    overlap or one ends before it starts (Praat, praatio and textgrid refuse such files)."""
    out, prev = [], None
    for iv in sorted(intervals, key=lambda v: (v.start, v.end)):
        # Times to the microsecond: sums of frame shifts (0.253 + 0.030 = 0.28300000000000003)
        # must not read as an overlap with the next interval's start.
        start, end = round(max(0.0, iv.start), 6), round(min(iv.end, duration), 6)
        if start >= duration:
            continue
        if not end > start:
            raise AlignmentError(f"tier {name!r}: interval {iv.phone!r} ends at {iv.end:.4f} s, not after its start "
                                 f"{iv.start:.4f} s")
        if prev is not None and start < prev.end - 1e-9:
            raise AlignmentError(f"tier {name!r}: intervals {prev.phone!r} ({prev.start:.4f}-{prev.end:.4f} s) and "
                                 f"{iv.phone!r} ({iv.start:.4f}-{iv.end:.4f} s) overlap")
        prev = PhoneInterval(start, end, iv.phone)
        out.append(prev)
    return out


def write_textgrid(path: str | os.PathLike, tiers: dict[str, list[PhoneInterval]], duration: float) -> None:
    """Write interval tiers as a long-format TextGrid with praatio (gaps become empty intervals),
    atomically. Every tier is checked first (:func:`check_tier`): nothing is written for an invalid one."""
    from praatio import textgrid as tgio

    checked = {name: check_tier(name, ivs, duration) for name, ivs in tiers.items()}
    tg = tgio.Textgrid(0.0, duration)
    try:
        for name, ivs in checked.items():
            tg.addTier(tgio.IntervalTier(name, [(iv.start, iv.end, iv.phone) for iv in ivs], 0.0, duration))
    except Exception as exc:  # praatio's own validation; check_tier should have caught it first
        raise AlignmentError(f"{path}: invalid tier ({str(exc).splitlines()[0][:160]})") from None
    with atomic_path(path) as tmp:
        tg.save(str(tmp), format="long_textgrid", includeBlankSpaces=True, reportingMode="silence")


def read_timit_phn(path: str | os.PathLike, sample_rate: int = 16000) -> list[PhoneInterval]:
    """TIMIT .PHN: ``<start sample> <end sample> <phone>`` per line."""
    path = Path(path)
    out = []
    for no, line in enumerate(_read_text(path).splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            s, e, ph = int(parts[0]), int(parts[1]), parts[2]
        except (ValueError, IndexError):
            raise AlignmentError(f"{path}:{no}: expected '<start sample> <end sample> <phone>', got {line!r}") from None
        if e <= s:
            raise AlignmentError(f"{path}:{no}: end sample {e} is not after start {s}")
        out.append(PhoneInterval(s / sample_rate, e / sample_rate, ph))
    return out


def read_htk_lab(path: str | os.PathLike) -> list[PhoneInterval]:
    """HTK/HTS .lab: ``<start> <end> <label>`` in 100 ns units; full-context labels
    (``a^b-c+d=e@...``) are reduced to their centre phone ``c``."""
    import re

    path = Path(path)
    out = []
    for no, line in enumerate(_read_text(path).splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0] == ".":
            continue
        if len(parts) < 3:
            raise AlignmentError(f"{path}:{no}: expected '<start> <end> <label>', got {line!r}")
        try:
            s, e = int(parts[0]), int(parts[1])
        except ValueError:
            raise AlignmentError(f"{path}:{no}: start/end must be integers (100 ns units), got {line!r}") from None
        label = parts[2]
        m = re.match(r"^[^-]*-([^+]+)\+", label)
        out.append(PhoneInterval(s / 1e7, e / 1e7, m.group(1) if m else label))
    return out


#: TIMIT 61 -> 39 folding (Lee & Hon 1989): closures and pauses to silence, etc.
TIMIT_61_TO_39 = {
    "aa": "aa", "ao": "aa", "ae": "ae", "ah": "ah", "ax": "ah", "ax-h": "ah", "aw": "aw", "ay": "ay",
    "b": "b", "ch": "ch", "d": "d", "dh": "dh", "dx": "dx", "eh": "eh", "er": "er", "axr": "er",
    "ey": "ey", "f": "f", "g": "g", "hh": "hh", "hv": "hh", "ih": "ih", "ix": "ih", "iy": "iy",
    "jh": "jh", "k": "k", "l": "l", "el": "l", "m": "m", "em": "m", "n": "n", "en": "n", "nx": "n",
    "ng": "ng", "eng": "ng", "ow": "ow", "oy": "oy", "p": "p", "r": "r", "s": "s", "sh": "sh", "zh": "sh",
    "t": "t", "th": "th", "uh": "uh", "uw": "uw", "ux": "uw", "v": "v", "w": "w", "y": "y", "z": "z",
    "bcl": "sil", "dcl": "sil", "gcl": "sil", "pcl": "sil", "tcl": "sil", "kcl": "sil", "h#": "sil",
    "pau": "sil", "epi": "sil", "q": None,
}
SILENCES = frozenset({"sil", "sp", "spn", "pau", "h#", "SIL", "<sil>", ""})


def fold_phone(phone: str, mapping: dict[str, str | None] | None = None, strip_stress: bool = True,
               merge_silence: bool = True) -> str | None:
    """Normalise a phone label: Kaldi's word-position suffix removed (``AH0_B`` -> ``AH0``), lower
    case, stress digits removed (``AH0`` -> ``ah``), silences merged to ``sil``, then an optional
    folding map (``None`` in the map drops the phone)."""
    p = phone.strip()
    # Kaldi's position-dependent phones (ali-to-phones --ctm-output with a lang built with
    # position_dependent_phones) mark word begin / inside / end / singleton; they are one phone.
    if len(p) > 2 and p[-2] == "_" and p[-1] in "BIES":
        p = p[:-2]
    if strip_stress:
        p = p.rstrip("012")
    p = p.lower()
    if merge_silence and (p in SILENCES or phone in SILENCES):
        p = "sil"
    if mapping is not None and p in mapping:
        return mapping[p]
    return p


def fold_intervals(intervals: list[PhoneInterval], **kw) -> list[PhoneInterval]:
    out = []
    for iv in intervals:
        p = fold_phone(iv.phone, **kw)
        if p is not None:
            out.append(PhoneInterval(iv.start, iv.end, p))
    return out


@dataclass
class FrameAlignmentReport:
    """How alignments matched the code sequences (nothing is dropped silently)."""

    matched: int = 0
    missing: list[str] = None           # utterances with codes but no alignment
    length_mismatch: list[str] = None   # alignment end differs from the codes by more than the tolerance

    def __post_init__(self):
        self.missing = self.missing or []
        self.length_mismatch = self.length_mismatch or []

    def as_dict(self) -> dict:
        return {"matched": self.matched, "missing_alignment": len(self.missing),
                "length_mismatch": len(self.length_mismatch),
                "examples": (self.missing + self.length_mismatch)[:10]}


def align_to_frames(codes: dict[str, list[int]], alignment: Alignment, frame_shift: float,
                    tolerance: float = 0.05, fold: dict | None = None) -> tuple[dict[str, list[str]], FrameAlignmentReport]:
    """Frame labels for every utterance with codes and a matching alignment.

    Returns ({utt: labels (len = number of codes)}, report).  An utterance whose alignment
    ends more than ``tolerance`` seconds away from the end of its codes is counted as a
    mismatch and left out; frames past the alignment's end (within tolerance) get ``sil``.
    Phones are normalised with :func:`fold_phone` (stress removed, silences -> ``sil``) and
    then ``fold`` (e.g. :data:`TIMIT_61_TO_39`).
    """
    rep = FrameAlignmentReport()
    out = {}
    for utt in sorted(codes):
        if utt not in alignment:
            rep.missing.append(utt)
            continue
        ivs = fold_intervals(alignment[utt], mapping=fold)
        n = len(codes[utt])
        end = alignment[utt][-1].end
        # codes cover ceil(T / hop) frames, so they may run up to one frame past the audio
        if end > n * frame_shift + tolerance or end < (n - 1) * frame_shift - tolerance:
            rep.length_mismatch.append(utt)
            continue
        out[utt] = frame_labels(ivs, n, frame_shift, fill="sil")
        rep.matched += 1
    return out, rep
