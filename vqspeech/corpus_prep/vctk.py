"""VCTK data preparation: both release layouts -> Kaldi data directories.

- VCTK 0.92: ``wav48_silence_trimmed/pXXX/pXXX_NNN_mic{1,2}.flac`` (choose the mic)
- VCTK 0.80: ``wav48/pXXX/pXXX_NNN.wav``
- both: ``txt/pXXX/pXXX_NNN.txt``

Utterances without a transcript (all of p315, a few others) are skipped and counted.
Splits: ``test`` holds the sentences given by ``test_sentences`` (by default 1-24, the
Rainbow Passage and elicitation paragraph that every speaker reads, so the test set is
parallel) plus every utterance of the held-out speakers; ``dev`` every 20th of the
rest; ``train`` the remainder.

``vqspeech prepare-vctk --vctk-root DIR --out-dir data [--mic mic2] [--heldout-speakers p225,p226]``
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..kaldi_data_dir import DataDir, write_data_dir
from ..errors import UserError

_UTT = re.compile(r"^(p\d+|s\d+)_(\d+)(?:_(mic[12]))?$")


@dataclass
class VctkReport:
    layout: str
    splits: dict[str, Path]
    counts: dict[str, int]
    skipped_no_text: dict[str, int] = field(default_factory=dict)


def detect_layout(root: Path) -> tuple[str, Path]:
    """Return ("0.92", wav dir) or ("0.80", wav dir) for a VCTK root."""
    if (root / "wav48_silence_trimmed").is_dir():
        return "0.92", root / "wav48_silence_trimmed"
    if (root / "wav48").is_dir():
        return "0.80", root / "wav48"
    raise UserError(f"{root}: not a VCTK root (neither wav48_silence_trimmed/ (0.92) nor wav48/ (0.80) found)")


def parse_ranges(spec: str) -> set[int]:
    """'1-24,30' -> {1..24, 30}."""
    out: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        try:
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise UserError(f"--test-sentences: cannot parse {part!r} (use e.g. '1-24,30')") from None
    return out


def prepare_vctk(root: str | os.PathLike, out_dir: str | os.PathLike, mic: str = "mic1",
                 heldout_speakers: list[str] | None = None, test_sentences: str = "1-24",
                 dev_every: int = 20) -> VctkReport:
    """Scan a VCTK tree and write ``out_dir/{train,dev,test}``."""
    root, out_dir = Path(root), Path(out_dir)
    if mic not in ("mic1", "mic2"):
        raise UserError(f"--mic must be mic1 or mic2, got {mic!r}")
    layout, wav_root = detect_layout(root)
    txt_root = root / "txt"
    if not txt_root.is_dir():
        raise UserError(f"{txt_root}: transcript directory not found")
    heldout = set(heldout_speakers or [])
    test_ids = parse_ranges(test_sentences)
    suffix = ".flac" if layout == "0.92" else ".wav"

    split_tables = {name: DataDir(text={}) for name in ("train", "dev", "test")}
    skipped: dict[str, int] = {}
    speakers = sorted(p.name for p in wav_root.iterdir() if p.is_dir())
    unknown = heldout - set(speakers)
    if unknown:
        raise UserError(f"--heldout-speakers: {sorted(unknown)} not found under {wav_root}")
    for spk in speakers:
        rest_count = 0
        for wav in sorted((wav_root / spk).glob(f"*{suffix}")):
            m = _UTT.match(wav.stem)
            if not m or m.group(1) != spk:
                continue
            if layout == "0.92" and m.group(3) != mic:
                continue
            utt = f"{spk}_{m.group(2)}"
            txt = txt_root / spk / f"{utt}.txt"
            if not txt.is_file():
                skipped[spk] = skipped.get(spk, 0) + 1
                continue
            try:
                text = " ".join(txt.read_text("utf-8").split())
            except UnicodeDecodeError:
                raise UserError(f"{txt}: transcript is not valid UTF-8") from None
            if not text:
                skipped[spk] = skipped.get(spk, 0) + 1
                continue
            if spk in heldout or int(m.group(2)) in test_ids:
                split = "test"
            else:
                rest_count += 1
                split = "dev" if rest_count % dev_every == 0 else "train"
            dd = split_tables[split]
            dd.wav_scp[utt] = str(wav.resolve())
            dd.utt2spk[utt] = spk
            dd.text[utt] = text
    splits = {}
    for name, dd in split_tables.items():
        if not dd.utt2spk:
            raise UserError(f"{root}: no utterances for the {name} split (check --test-sentences / layout)")
        splits[name] = out_dir / name
        write_data_dir(splits[name], dd)
    return VctkReport(layout, splits, {n: len(d.utt2spk) for n, d in split_tables.items()}, skipped)
