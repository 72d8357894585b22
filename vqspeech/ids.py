"""Utterance and speaker ids are untrusted input: one rule for them, and safe output paths.

An id is a non-empty token without ``/``, ``\\``, NUL, whitespace or other control characters,
and is not ``.`` or ``..``. Every command that names an output file after an id builds the
path with :func:`path_in`, which resolves it and refuses anything outside the output folder.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from .errors import UserError


def id_problem(value: str) -> str | None:
    """Why ``value`` is not a valid id, or None when it is."""
    if not value:
        return "it is empty"
    if value in (".", ".."):
        return f"{value!r} names a directory"
    for ch in value:
        if ch in "/\\":
            return f"it contains {ch!r}"
        if ch == "\0" or unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch.isspace():
            return f"it contains the control or space character U+{ord(ch):04X}"
    return None


def check_id(value: str, where: str, what: str = "id", error: type[UserError] = UserError) -> str:
    """Return ``value`` if it is a valid id; else raise ``error`` ``<where>: <what> <value> is not a valid id (...)``."""
    problem = id_problem(value)
    if problem is not None:
        raise error(f"{where}: {what} {value!r} is not a valid id ({problem}); ids may not contain "
                        f"'/', '\\', control characters, or be '.' or '..'")
    return value


def path_in(out_dir: str | os.PathLike, *parts: str) -> Path:
    """``out_dir / parts...``, refused (UserError) unless it resolves to a path inside ``out_dir``.

    Symbolic links are followed, so a link planted in the output folder cannot redirect a write.
    """
    base = Path(out_dir)
    target = base.joinpath(*parts)
    root = base.resolve()
    resolved = target.resolve()
    if resolved == root or root not in resolved.parents:
        raise UserError(f"{target}: refusing to write outside the output folder {base} "
                        f"(the name comes from an id: {'/'.join(parts)!r})")
    return target


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` are the same file: the same resolved path, or the same inode."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
