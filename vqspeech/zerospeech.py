"""Codes and features in the ZeroSpeech challenges' file formats (``vqspeech export-zerospeech``).

One text file ``<utt>.txt`` per utterance, one line per code frame (frame shift = hop / rate):

- ``zr2019`` (ZeroSpeech 2019, "TTS without T" embeddings): each line the one-hot vector of
  the frame's code, space-separated integers.  The 2019 bitrate counts distinct lines, so a
  one-hot line is one symbol.
- ``zr2021`` (ZeroSpeech 2021, phonetic track): each line a feature vector, space-separated
  floats, no time column; the frame shift goes in the submission's ``meta.yaml``.
- ``times`` (ZeroSpeech 2017 text features): ``<time> <f1> <f2> ...``, time the frame's
  centre in seconds, ``(i + 0.5) * shift``.
- ``units``: the code id of each frame, one per line (what a unit language model reads).

Feature formats take ``quantized`` vectors (the codebook rows the decoder sees) or the
``continuous`` encoder outputs before quantisation.  ``export.json`` in the folder records the
format, frame shift, feature kind and model.  :func:`read_zerospeech_file` reads any of them back.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import UserError
from .fileio import atomic_write
from .ids import path_in

FORMATS = ("zr2019", "zr2021", "times", "units")
FEATURES = ("quantized", "continuous")


def format_lines(fmt: str, codes: np.ndarray, features: np.ndarray | None, num_codes: int, frame_shift: float) -> str:
    """codes (F,) int, features (F, D) float or None -> the file's text."""
    if fmt == "zr2019":
        eye = np.eye(num_codes, dtype=np.int64)
        return "".join(" ".join(map(str, eye[c])) + "\n" for c in codes)
    if fmt == "units":
        return "".join(f"{int(c)}\n" for c in codes)
    if features is None or len(features) != len(codes):
        raise ValueError("feature formats need one feature vector per code frame")
    rows = [" ".join(f"{v:.6g}" for v in row) for row in features]
    if fmt == "zr2021":
        return "".join(r + "\n" for r in rows)
    if fmt == "times":
        return "".join(f"{(i + 0.5) * frame_shift:.4f} {r}\n" for i, r in enumerate(rows))
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def write_utterance(out_dir, utt: str, fmt: str, codes, features, num_codes: int, frame_shift: float) -> Path:
    path = path_in(out_dir, f"{utt}.txt")
    with atomic_write(path) as fh:
        fh.write(format_lines(fmt, np.asarray(codes), features, num_codes, frame_shift))
    return path


def write_manifest(out_dir, fmt: str, feature_kind: str | None, frame_shift: float, num_codes: int, model: str,
                   utterances: int) -> None:
    with atomic_write(Path(out_dir) / "export.json") as fh:
        json.dump({"format": fmt, "features": feature_kind, "frame_shift_seconds": frame_shift,
                   "num_codes": num_codes, "model": model, "utterances": utterances}, fh, indent=2)


def read_zerospeech_file(path, fmt: str) -> dict:
    """Back from a file: {"codes": (F,) int} for zr2019/units, {"features": (F, D)} for zr2021,
    plus {"times": (F,)} for times; a one-line UserError for a malformed file."""
    path = Path(path)
    try:
        rows = [line.split() for line in path.read_text("utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({exc})") from None
    if not rows:
        raise UserError(f"{path}: empty")
    width = len(rows[0])
    for no, r in enumerate(rows, 1):
        if len(r) != width:
            raise UserError(f"{path}:{no}: {len(r)} columns where line 1 has {width}")
    try:
        data = np.array(rows, dtype=np.float64)
    except ValueError:
        raise UserError(f"{path}: not numbers") from None
    if fmt == "units":
        return {"codes": data[:, 0].astype(np.int64)}
    if fmt == "zr2019":
        if not np.all((data == 0) | (data == 1)) or not np.all(data.sum(1) == 1):
            raise UserError(f"{path}: zr2019 lines must be one-hot")
        return {"codes": data.argmax(1)}
    if fmt == "zr2021":
        return {"features": data}
    if fmt == "times":
        return {"times": data[:, 0], "features": data[:, 1:]}
    raise UserError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
