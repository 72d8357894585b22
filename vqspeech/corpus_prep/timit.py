"""TIMIT data preparation: the LDC tree -> Kaldi data directories with a ``phones.ctm`` from TIMIT's
hand-labelled phone boundaries (the standard corpus for phone discovery).

Layout: ``<root>/{TRAIN,TEST}/DR<n>/<speaker>/<sentence>.{WAV,PHN,TXT}`` in upper or lower case.
``.WAV`` is NIST SPHERE, which soundfile reads; copies that carry a converted ``<sentence>.WAV.wav``
beside it work too (the SPHERE file is used). Ids follow Kaldi's TIMIT recipe: speaker ``fcjf0``,
utterance ``fcjf0_si1027``.

Splits: ``test`` is the core test set (the 24 speakers below, 192 SI/SX sentences; ``complete``
takes all 168 speakers of TEST), unseen in training as is usual for phone evaluation; ``dev``
every ``dev_every``-th sentence of TRAIN in speaker order (validation needs voices the decoder
knows; with the default 20, about 5% of TRAIN, each from another speaker); ``train`` the rest
of TRAIN. The two SA sentences every speaker reads are left out unless ``include_sa`` (they would
bias phone statistics towards those two texts).

Phones: TIMIT's 61 labels, or folded to 39 (Lee & Hon 1989: closures and pauses to ``sil``, the
glottal stop ``q`` dropped; ``phones="39"``, the default).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..alignment_import import read_alignment_file
from ..alignments import TIMIT_61_TO_39, Alignment, fold_intervals, write_ctm
from ..errors import UserError
from ..kaldi_data_dir import DataDir, write_data_dir

#: The core test set: two men and one woman from each dialect region (DR1 ... DR8).
CORE_TEST_SPEAKERS = frozenset({
    "mdab0", "mwbt0", "felc0", "mtas1", "mwew0", "fpas0", "mjmp0", "mlnt0", "fpkt0", "mlll0", "mtls0", "fjlm0",
    "mbpm0", "mklt0", "fnlp0", "mcmj0", "mjdh0", "fmgd0", "mgrt0", "mnjm0", "fdhc0", "mjln0", "mpam0", "fmld0"})
SAMPLE_RATE = 16000


@dataclass
class TimitReport:
    splits: dict[str, Path]
    counts: dict[str, int]
    speakers: dict[str, int]
    skipped: dict[str, int] = field(default_factory=dict)   # reason -> utterances


def _child(folder: Path, name: str) -> Path | None:
    """The entry of ``folder`` named ``name`` in any case, or None."""
    for p in folder.iterdir():
        if p.name.lower() == name.lower():
            return p
    return None


def find_parts(root: Path) -> tuple[Path, Path]:
    """(TRAIN, TEST) folders of a TIMIT root, in whatever case they are written."""
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    train, test = _child(root, "train"), _child(root, "test")
    if train is None or test is None or not train.is_dir() or not test.is_dir():
        raise UserError(f"{root}: not a TIMIT root (TRAIN/ and TEST/ not both found)")
    return train, test


def _sentences(speaker_dir: Path) -> dict[str, dict[str, Path]]:
    """{sentence (lower case): {"wav": path, "phn": path, "txt": path}} of one speaker's folder."""
    out: dict[str, dict[str, Path]] = {}
    for p in speaker_dir.iterdir():
        stem, dot, ext = p.name.lower().partition(".")
        if dot and ext in ("wav", "phn", "txt") and p.is_file():  # "sa1.wav.wav" has ext "wav.wav": skipped
            out.setdefault(stem, {})[ext] = p
    return out


def _transcript(path: Path) -> str:
    """The words of a TIMIT .TXT line (``<start sample> <end sample> <text>``)."""
    try:
        parts = path.read_text("ascii", errors="strict").split(maxsplit=2)
    except (UnicodeDecodeError, OSError) as exc:
        raise UserError(f"{path}: unreadable transcript ({exc})") from None
    if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise UserError(f"{path}: expected '<start sample> <end sample> <text>'")
    return " ".join(parts[2].split())


def prepare_timit(root: str | os.PathLike, out_dir: str | os.PathLike, phones: str = "39",
                  test_set: str = "core", include_sa: bool = False, dev_every: int = 20) -> TimitReport:
    """Scan a TIMIT tree and write ``out_dir/{train,dev,test}``, each with ``phones.ctm``."""
    if phones not in ("39", "61"):
        raise UserError(f"--phones must be 39 or 61, got {phones!r}")
    if test_set not in ("core", "complete"):
        raise UserError(f"--test-set must be core or complete, got {test_set!r}")
    if dev_every < 2:
        raise UserError(f"dev_every must be >= 2, got {dev_every}")
    root, out_dir = Path(root), Path(out_dir)
    train_part, test_part = find_parts(root)
    tables = {name: DataDir(text={}) for name in ("train", "dev", "test")}
    ctms: dict[str, Alignment] = {name: {} for name in tables}
    skipped: dict[str, int] = {}
    kept = 0  # TRAIN sentences so far: every dev_every-th goes to dev
    for part in (train_part, test_part):
        speaker_dirs = sorted(s for r in part.iterdir() if r.is_dir() for s in r.iterdir() if s.is_dir())
        for speaker_dir in speaker_dirs:
            spk = speaker_dir.name.lower()
            if part is test_part and test_set == "core" and spk not in CORE_TEST_SPEAKERS:
                continue
            for sentence, files in sorted(_sentences(speaker_dir).items()):
                if sentence.startswith("sa") and not include_sa:
                    skipped["SA sentences"] = skipped.get("SA sentences", 0) + 1
                    continue
                missing = [ext for ext in ("wav", "phn", "txt") if ext not in files]
                if missing:
                    reason = f"no .{'/.'.join(missing).upper()}"
                    skipped[reason] = skipped.get(reason, 0) + 1
                    continue
                utt = f"{spk}_{sentence}"
                if part is test_part:
                    split = "test"
                else:
                    kept += 1
                    split = "dev" if kept % dev_every == 0 else "train"
                intervals = read_alignment_file(files["phn"], "timit", sample_rate=SAMPLE_RATE)
                if phones == "39":
                    intervals = fold_intervals(intervals, mapping=TIMIT_61_TO_39)
                dd = tables[split]
                dd.wav_scp[utt] = str(files["wav"].resolve())
                dd.utt2spk[utt] = spk
                dd.text[utt] = _transcript(files["txt"])
                ctms[split][utt] = intervals
    found = {name: len(dd.utt2spk) for name, dd in tables.items()}
    for name, n in found.items():
        if not n:
            hint = f"; fewer than {dev_every} TRAIN sentences for --dev-every {dev_every}" if name == "dev" else ""
            raise UserError(f"{root}: no utterances for the {name} split (found: "
                            + ", ".join(f"{k}={v}" for k, v in found.items()) + f"){hint}")
    splits = {}
    for name, dd in tables.items():
        splits[name] = out_dir / name
        write_data_dir(splits[name], dd)
        write_ctm(splits[name] / "phones.ctm", ctms[name])
    return TimitReport(splits, found, {n: len(set(dd.utt2spk.values())) for n, dd in tables.items()}, skipped)
