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
    """Intervals of the named interval tier of a Praat TextGrid (long or short text format).

    Empty labels are skipped (Praat's unlabelled gaps).
    """
    try:
        return _read_textgrid(path, tier)
    except (IndexError, ValueError, OverflowError):
        raise AlignmentError(f"{path}: malformed TextGrid") from None


def _read_textgrid(path, tier: str) -> list[PhoneInterval]:
    import re

    path = Path(path)
    text = re.sub(r"\[\d*\]", " ", _read_text(path))  # drop "intervals [3]:" indices of the long format
    # Tokenise: quoted strings (with "" escapes) and bare words/numbers, in order.
    tokens = re.findall(r'"((?:[^"]|"")*)"|([^\s=\[\]:]+)', text)
    toks = [(q.replace('""', '"'), True) if b == "" else (b, False) for q, b in tokens]
    strings = [t for t, _ in toks]
    try:
        i = strings.index("IntervalTier")
    except ValueError:
        raise AlignmentError(f"{path}: no interval tier in this TextGrid") from None
    names = []
    while True:
        # Layout after "IntervalTier": name, xmin, xmax, count, then count x (xmin, xmax, text)
        j = i + 1
        while j < len(toks) and not toks[j][1]:
            j += 1  # long format has keywords (name, xmin...) between
        name = toks[j][0]
        nums = []
        k = j + 1
        while len(nums) < 3 and k < len(toks):
            try:
                nums.append(float(toks[k][0]))
            except ValueError:
                pass
            k += 1
        count = int(nums[2])
        names.append(name)
        intervals = []
        for _ in range(count):
            vals = []
            while len(vals) < 2:
                try:
                    vals.append(float(toks[k][0]))
                except (ValueError, IndexError):
                    if k >= len(toks):
                        raise AlignmentError(f"{path}: tier {name!r} is truncated") from None
                k += 1
            while not toks[k][1]:
                k += 1
            label = toks[k][0].strip()
            k += 1
            if label:
                intervals.append(PhoneInterval(vals[0], vals[1], label))
        if name == tier:
            return intervals
        try:
            i = strings.index("IntervalTier", k)
        except ValueError:
            raise AlignmentError(f"{path}: no interval tier named {tier!r} (tiers: {', '.join(names)})") from None


def write_textgrid(path: str | os.PathLike, tiers: dict[str, list[PhoneInterval]], duration: float) -> None:
    """Write interval tiers as a long-format TextGrid (gaps filled with empty intervals), atomically."""
    def esc(s: str) -> str:
        return s.replace('"', '""')

    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {duration:.4f}",
             "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
    for n, (name, ivs) in enumerate(tiers.items(), start=1):
        filled, t = [], 0.0
        for iv in sorted(ivs, key=lambda v: v.start):
            if iv.start > t + 1e-6:
                filled.append(PhoneInterval(t, iv.start, ""))
            filled.append(PhoneInterval(max(iv.start, t), min(iv.end, duration), iv.phone))
            t = min(iv.end, duration)
        if t < duration - 1e-6:
            filled.append(PhoneInterval(t, duration, ""))
        lines += [f"    item [{n}]:", '        class = "IntervalTier"', f'        name = "{esc(name)}"',
                  "        xmin = 0", f"        xmax = {duration:.4f}", f"        intervals: size = {len(filled)}"]
        for k, iv in enumerate(filled, start=1):
            lines += [f"        intervals [{k}]:", f"            xmin = {iv.start:.4f}",
                      f"            xmax = {iv.end:.4f}", f'            text = "{esc(iv.phone)}"']
    with atomic_write(path) as fh:
        fh.write("\n".join(lines) + "\n")


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
    """Normalise a phone label: lower case, stress digits removed (``AH0`` -> ``ah``), silences
    merged to ``sil``, then an optional folding map (``None`` in the map drops the phone)."""
    p = phone.strip()
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
