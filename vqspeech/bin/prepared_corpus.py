"""What a ``prepare-<corpus>`` command prints once its data directories are written."""

from __future__ import annotations

from pathlib import Path


def print_prepared(corpus: str, counts: dict[str, int], speakers: dict[str, int], splits: dict[str, Path],
                   left_out: str | None = None, written_with: str = "") -> None:
    """One line of utterances and speakers per split, what was left out (when anything), and one
    ``wrote <dir>`` line per split (``written_with``: e.g. " (with phones.ctm)")."""
    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'s' * (n != 1)}"

    print(f"{corpus}: " + ", ".join(f"{name}={plural(n, 'utterance')} of {plural(speakers[name], 'speaker')}"
                                    for name, n in counts.items()))
    if left_out:
        print(f"left out {left_out}")
    for path in splits.values():
        print(f"wrote {path}{written_with}")
