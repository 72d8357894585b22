"""LibriSpeech data preparation: subsets of the OpenSLR tree -> Kaldi data directories.

Layout: ``<root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<nnnn>.flac`` with one
``<speaker>-<chapter>.trans.txt`` (``<utt> WORDS ...`` per line) per chapter folder; ``<root>``
is the ``LibriSpeech`` folder that holds the subsets (``train-clean-100``, ``dev-clean``, ...).
Ids are LibriSpeech's own (utterance ``103-1240-0000`` starts with its speaker ``103``).

Splits: the ``train_subsets`` together make ``train``, less every ``dev_every``-th utterance,
which makes ``dev`` (validation needs voices the decoder was trained on); each of the
``eval_subsets`` becomes a data directory of its own named with ``_`` for ``-``
(``dev-clean`` -> ``dev_clean``): their speakers are unseen, as in ZeroSpeech 2021's ABX on
dev-clean and test-clean. LibriSpeech has no phone alignments: ``vqspeech import-alignments``
brings in the Montreal Forced Aligner's TextGrids, which are named by utterance.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..kaldi_data_dir import DataDir, write_data_dir


@dataclass
class LibriSpeechReport:
    splits: dict[str, Path]
    counts: dict[str, int]
    speakers: dict[str, int]
    untranscribed: int   # audio files without a transcript line (left out)


def _transcripts(path: Path) -> dict[str, str]:
    """{utt: words} of one ``.trans.txt``; UserError naming the file and line when malformed."""
    out = {}
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: unreadable transcript ({exc})") from None
    for no, line in enumerate(lines, start=1):
        utt, _, words = line.strip().partition(" ")
        if not utt:
            continue
        if not words.strip():
            raise UserError(f"{path}:{no}: expected '<utterance> <words>', got {line!r}")
        out[utt] = " ".join(words.split())
    return out


def read_subset(root: Path, subset: str) -> tuple[DataDir, int]:
    """(data directory of every transcribed utterance of one subset, untranscribed files)."""
    folder = root / subset
    if not folder.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise UserError(f"{folder}: subset not found" + (f" (found: {', '.join(present)})" if present else
                                                         f"; {root} is not a folder"))
    dd = DataDir(text={})
    untranscribed = 0
    for chapter in sorted(c for s in folder.iterdir() if s.is_dir() for c in s.iterdir() if c.is_dir()):
        speaker = chapter.parent.name
        texts: dict[str, str] = {}
        for trans in chapter.glob("*.trans.txt"):
            texts.update(_transcripts(trans))
        for flac in sorted(chapter.glob("*.flac")):
            utt = flac.stem
            if not utt.startswith(f"{speaker}-"):
                raise UserError(f"{flac}: a LibriSpeech file name starts with its speaker folder's name ({speaker}-)")
            if utt not in texts:
                untranscribed += 1
                continue
            dd.wav_scp[utt] = str(flac.resolve())
            dd.utt2spk[utt] = speaker
            dd.text[utt] = texts[utt]
    if not dd.utt2spk:
        raise UserError(f"{folder}: no transcribed .flac files (<speaker>/<chapter>/<utt>.flac)")
    return dd, untranscribed


def prepare_librispeech(root: str | os.PathLike, out_dir: str | os.PathLike,
                        train_subsets: list[str] = ("train-clean-100",),
                        eval_subsets: list[str] = ("dev-clean", "test-clean"),
                        dev_every: int = 100) -> LibriSpeechReport:
    """Scan the subsets and write ``out_dir/train``, ``out_dir/dev`` and one directory per eval subset."""
    if dev_every < 2:
        raise UserError(f"dev_every must be >= 2, got {dev_every}")
    if not train_subsets:
        raise UserError("at least one training subset is needed")
    overlap = set(train_subsets) & set(eval_subsets)
    if overlap:
        raise UserError(f"{', '.join(sorted(overlap))}: a subset cannot be both trained on and evaluated")
    root, out_dir = Path(root), Path(out_dir)
    tables = {"train": DataDir(text={}), "dev": DataDir(text={})}
    untranscribed = 0
    kept = 0
    for subset in train_subsets:
        dd, missing = read_subset(root, subset)
        untranscribed += missing
        for utt in dd.utterances:
            kept += 1
            target = tables["dev" if kept % dev_every == 0 else "train"]
            target.wav_scp[utt], target.utt2spk[utt], target.text[utt] = dd.wav_scp[utt], dd.utt2spk[utt], dd.text[utt]
    if not tables["dev"].utt2spk:
        raise UserError(f"{kept} training utterances: none for dev with --dev-every {dev_every}")
    for subset in eval_subsets:
        name = subset.replace("-", "_")
        if name in tables:
            raise UserError(f"eval subset {subset!r} would overwrite the {name} data directory")
        tables[name], missing = read_subset(root, subset)
        untranscribed += missing
    splits = {}
    for name, dd in tables.items():
        splits[name] = out_dir / name
        write_data_dir(splits[name], dd)
    return LibriSpeechReport(splits, {n: len(d.utt2spk) for n, d in tables.items()},
                             {n: len(set(d.utt2spk.values())) for n, d in tables.items()}, untranscribed)
