"""Codes files as ``vqspeech encode`` writes them: one line per utterance, ``<utt> <code> <code> ...``."""

from __future__ import annotations

from pathlib import Path

from .errors import UserError
from .fileio import atomic_write
from .ids import check_id


def read_codes(path: str | Path) -> dict[str, list[int]]:
    """{utt: [code, ...]}; a one-line UserError naming the file and line for anything malformed."""
    out: dict[str, list[int]] = {}
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read codes ({exc})") from None
    for no, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        check_id(parts[0], f"{path}:{no}", "utterance id")
        try:
            out[parts[0]] = [int(c) for c in parts[1:]]
        except ValueError:
            raise UserError(f"{path}:{no}: codes must be integers") from None
        if not out[parts[0]]:
            raise UserError(f"{path}:{no}: utterance {parts[0]!r} has no codes")
    return out


def write_codes(path: str | Path, codes: dict[str, list[int]]) -> None:
    """Write {utt: codes} atomically, utterances sorted."""
    with atomic_write(path) as fh:
        for utt in sorted(codes):
            fh.write(f"{utt} {' '.join(map(str, codes[utt]))}\n")


def check_code_range(codes: dict[str, list[int]], num_codes: int, source) -> None:
    """UserError when a code is outside 0..num_codes-1 (codes of another model)."""
    for utt, seq in codes.items():
        bad = [c for c in seq if not 0 <= c < num_codes]
        if bad:
            raise UserError(f"{source}: utterance {utt!r} has code {bad[0]} outside 0..{num_codes - 1} "
                            f"(codes of another model?)")
