"""Phone alignments made by other tools, one file per utterance, gathered into a data directory's
``phones.ctm`` (what ``vqspeech phone-report`` and the recipes read).

Formats: Praat TextGrid (Montreal Forced Aligner, WebMAUS, Praat; one interval tier of phones),
TIMIT ``.PHN`` (sample indices) and HTK/HTS ``.lab`` (100 ns units, full-context labels reduced to
their centre phone). A file belongs to the utterance named by its stem (``p225_001.TextGrid``)
or by its folder and stem joined with ``_`` (TIMIT's ``dr1/fcjf0/sa1.phn`` is Kaldi's
``fcjf0_sa1``), compared as written and then in lower case. Files that match no utterance and
utterances that no file aligns are counted, never dropped silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .alignments import (TIMIT_61_TO_39, Alignment, PhoneInterval, fold_intervals, read_htk_lab, read_textgrid,
                         read_timit_phn)
from .errors import AlignmentError

#: format name -> file suffix (compared in lower case)
SUFFIXES = {"textgrid": ".textgrid", "timit": ".phn", "htk": ".lab"}
#: ``--fold`` name -> phone map for :func:`vqspeech.alignments.fold_phone` (None: labels as written)
FOLDS: dict[str, dict | None] = {"none": None, "timit39": TIMIT_61_TO_39}


@dataclass
class ImportedAlignments:
    """The alignment of every matched utterance and what did not match."""

    alignment: Alignment
    files: int                                   # alignment files found
    unmatched_files: list[Path] = field(default_factory=list)
    unaligned_utterances: list[str] = field(default_factory=list)

    @property
    def phones(self) -> int:
        return sum(len(v) for v in self.alignment.values())


def find_alignment_files(sources: Iterable[str | os.PathLike], fmt: str = "auto") -> list[tuple[Path, str]]:
    """(path, format) of every alignment file given or found (recursively) under the given folders,
    in sorted order. ``fmt``: ``auto`` (by suffix) or one of :data:`SUFFIXES`. A file named
    directly must have its format's suffix."""
    if fmt != "auto" and fmt not in SUFFIXES:
        raise AlignmentError(f"unknown alignment format {fmt!r}; choose from auto, {', '.join(SUFFIXES)}")
    sources = list(sources)  # read twice: scanned, then named in the error
    wanted = SUFFIXES if fmt == "auto" else {fmt: SUFFIXES[fmt]}
    by_suffix = {suffix: name for name, suffix in wanted.items()}
    found: list[tuple[Path, str]] = []
    for src in map(Path, sources):
        if src.is_dir():
            found += sorted((p, by_suffix[p.suffix.lower()]) for p in src.rglob("*")
                            if p.suffix.lower() in by_suffix and p.is_file())
        elif src.is_file():
            if src.suffix.lower() not in by_suffix:
                raise AlignmentError(f"{src}: not a {' / '.join(wanted.values())} alignment file")
            found.append((src, by_suffix[src.suffix.lower()]))
        else:
            raise AlignmentError(f"{src}: no such file or folder")
    if not found:
        names = ", ".join(str(s) for s in sources)
        raise AlignmentError(f"no {' / '.join(wanted.values())} alignment files in {names}")
    return found


def utterance_of(path: Path, utterances: set[str]) -> str | None:
    """The utterance id ``path`` aligns: its stem, or ``<folder>_<stem>``, as written or in lower
    case; None when no utterance has one of those ids."""
    for candidate in (path.stem, f"{path.parent.name}_{path.stem}"):
        for form in (candidate, candidate.lower()):
            if form in utterances:
                return form
    return None


def read_alignment_file(path: Path, fmt: str, tier: str = "phones", sample_rate: int = 16000) -> list[PhoneInterval]:
    """The phone intervals of one file in time order; AlignmentError (naming the file) for an
    unreadable file, one without intervals, or an interval that does not end after it starts."""
    try:
        if fmt == "textgrid":
            intervals = read_textgrid(path, tier)
        elif fmt == "timit":
            intervals = read_timit_phn(path, sample_rate)
        else:
            intervals = read_htk_lab(path)
    except OSError as exc:
        raise AlignmentError(f"{path}: cannot read ({exc.strerror})") from None
    if not intervals:
        raise AlignmentError(f"{path}: no phone intervals")
    for iv in intervals:
        if not iv.end > iv.start:
            raise AlignmentError(f"{path}: phone {iv.phone!r} ends at {iv.end:.4f} s, not after its start "
                                 f"{iv.start:.4f} s")
    return sorted(intervals, key=lambda iv: iv.start)


def import_alignments(sources: Iterable[str | os.PathLike], utterances: Iterable[str], fmt: str = "auto",
                      tier: str = "phones", sample_rate: int = 16000, fold: str = "none",
                      require_match: bool = True) -> ImportedAlignments:
    """Read the alignment files in ``sources`` (files or folders) for the given utterance ids.

    ``tier``: the TextGrid tier of phones; ``sample_rate``: TIMIT's sample indices to seconds;
    ``fold``: a name in :data:`FOLDS` (``timit39``: TIMIT's 61 phones to 39, closures to ``sil``,
    ``q`` dropped, labels in lower case with stress digits removed). AlignmentError when two files
    align one utterance, or, with ``require_match``, when no file matches any utterance (without
    it the result is then empty: a recipe passes every set the same folder)."""
    if fold not in FOLDS:
        raise AlignmentError(f"unknown phone folding {fold!r}; choose from {', '.join(FOLDS)}")
    if sample_rate <= 0:
        raise AlignmentError(f"sample rate must be positive, got {sample_rate}")
    known = set(utterances)
    files = find_alignment_files(sources, fmt)
    owner: dict[str, Path] = {}
    out = ImportedAlignments({}, len(files))
    for path, file_fmt in files:
        utt = utterance_of(path, known)
        if utt is None:
            out.unmatched_files.append(path)
            continue
        if utt in owner:
            raise AlignmentError(f"{owner[utt]} and {path} both align utterance {utt!r}")
        owner[utt] = path
        intervals = read_alignment_file(path, file_fmt, tier, sample_rate)
        if FOLDS[fold] is not None:
            intervals = fold_intervals(intervals, mapping=FOLDS[fold])
        out.alignment[utt] = intervals
    if not out.alignment and require_match:
        example = out.unmatched_files[0]
        raise AlignmentError(f"none of the {len(files)} alignment files names an utterance of the data directory "
                             f"(a file is <utt>{example.suffix} or <folder>/<stem> for <folder>_<stem>; "
                             f"e.g. {example})")
    out.unaligned_utterances = sorted(known - set(out.alignment), key=lambda s: s.encode())
    return out
