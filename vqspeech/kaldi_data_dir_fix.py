"""``fix-data-dir`` as Kaldi's ``utils/fix_data_dir.sh``: sort, deduplicate, and keep only the
utterances present in every table, so that the result passes ``validate-data-dir``.

Utterance tables (utt2spk, text, utt2dur, segments or wav.scp, and Kaldi's optional ones) are
intersected; recordings are those the kept segments use; speakers are those the kept
utterances belong to, and ``spk2utt`` is regenerated. What was dropped is reported per table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .kaldi_data_dir import OPTIONAL_TABLES, _c_key, read_table
from .errors import DataDirError
from .fileio import atomic_write

_UTT_TABLES = ("utt2spk", "text", "utt2dur") + tuple(n for n, v in OPTIONAL_TABLES.items() if v[0] == "utt")
_SPK_TABLES = tuple(n for n, v in OPTIONAL_TABLES.items() if v[0] == "spk")
_RECO_TABLES = tuple(n for n, v in OPTIONAL_TABLES.items() if v[0] == "reco")


@dataclass
class FixReport:
    utterances_before: int
    utterances_after: int
    dropped: dict[str, list[str]] = field(default_factory=dict)   # reason -> dropped keys
    duplicates: dict[str, int] = field(default_factory=dict)      # table -> duplicate lines removed

    def lines(self) -> list[str]:
        out = [f"kept {self.utterances_after} of {self.utterances_before} utterances"]
        for reason, keys in self.dropped.items():
            out.append(f"dropped {len(keys)} {reason}: {' '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}")
        for table, n in self.duplicates.items():
            out.append(f"{table}: removed {n} duplicate key line(s), kept the first")
        return out


def _read(path: Path, report: FixReport) -> dict[str, str]:
    table: dict[str, str] = {}
    for _, key, rest in read_table(path, 1, None, final_newline=False):
        if key in table:
            report.duplicates[path.name] = report.duplicates.get(path.name, 0) + 1
            continue
        table[key] = rest
    return table


def fix_data_dir(path: str | Path) -> FixReport:
    """Repair the data directory ``path`` in place (each table rewritten atomically)."""
    d = Path(path)
    if not (d / "utt2spk").is_file():
        raise DataDirError(f"{d / 'utt2spk'}: required file missing")
    report = FixReport(0, 0)
    tables = {name: _read(d / name, report) for name in
              ("wav.scp", "segments", *_UTT_TABLES, *_SPK_TABLES, *_RECO_TABLES) if (d / name).is_file()}
    if "wav.scp" not in tables:
        raise DataDirError(f"{d / 'wav.scp'}: required file missing")
    utt2spk = tables["utt2spk"]
    report.utterances_before = len(utt2spk)
    segmented = "segments" in tables
    utt_tables = [n for n in _UTT_TABLES if n in tables] + (["segments"] if segmented else ["wav.scp"])
    keep = set(utt2spk)

    def drop(reason: str, gone: set[str]) -> None:
        if gone:
            report.dropped.setdefault(reason, []).extend(sorted(gone, key=_c_key))
            keep.difference_update(gone)

    drop("utterances whose utterance id does not start with the speaker id",
         {u for u in keep if not u.startswith(utt2spk[u])})
    while True:  # dropping an utterance can orphan a recording or a speaker, and back
        before = len(keep)
        for name in utt_tables:
            drop(f"utterances missing from {name}", {u for u in keep if u not in tables[name]})
        if segmented:
            recordings = {tables["segments"][u].split()[0] for u in keep if tables["segments"][u].split()}
            for name in ["wav.scp", *(n for n in _RECO_TABLES if n in tables)]:
                missing = {r for r in recordings if r not in tables[name]}
                drop(f"utterances whose recording is missing from {name}",
                     {u for u in keep if tables["segments"][u].split()[:1] and tables["segments"][u].split()[0] in missing})
        else:
            for name in (n for n in _RECO_TABLES if n in tables):
                drop(f"utterances missing from {name}", {u for u in keep if u not in tables[name]})
        speakers = {utt2spk[u] for u in keep}
        for name in (n for n in _SPK_TABLES if n in tables):
            missing = {s for s in speakers if s not in tables[name]}
            drop(f"utterances whose speaker is missing from {name}", {u for u in keep if utt2spk[u] in missing})
        if len(keep) == before:
            break
    speakers = {utt2spk[u] for u in keep}
    recordings = ({tables["segments"][u].split()[0] for u in keep} if segmented else set(keep))
    written = {}
    for name, table in tables.items():
        keys = (keep if name in utt_tables or name == "segments" else
                speakers if name in _SPK_TABLES else recordings)
        written[name] = {k: v for k, v in table.items() if k in keys}
    report.utterances_after = len(keep)
    for name, table in written.items():
        _write(d / name, table)
    spk2utt: dict[str, list[str]] = {}
    for u in sorted(keep, key=_c_key):
        spk2utt.setdefault(utt2spk[u], []).append(u)
    _write(d / "spk2utt", {s: " ".join(us) for s, us in spk2utt.items()})
    return report


def _write(path: Path, table: dict[str, str]) -> None:
    with atomic_write(path) as fh:
        for key in sorted(table, key=_c_key):
            fh.write(f"{key} {table[key]}\n" if table[key] else f"{key}\n")


def subset_data_dir(src: str | Path, dst: str | Path, exclude_speakers: list[str]) -> FixReport:
    """Copy data directory ``src`` to ``dst`` without the utterances of ``exclude_speakers`` (Kaldi's
    ``utils/subset_data_dir.sh --spk-list`` for the complement), then fix it as
    :func:`fix_data_dir` does; ``phones.ctm`` keeps the kept utterances' lines."""
    import shutil

    from .errors import UserError

    src, dst = Path(src), Path(dst)
    utt2spk_path = src / "utt2spk"
    if not utt2spk_path.is_file():
        raise UserError(f"{utt2spk_path}: no such file")
    utt2spk = [line.split() for line in utt2spk_path.read_text("utf-8").splitlines() if line.strip()]
    speakers = {p[1] for p in utt2spk if len(p) == 2}
    missing = sorted(set(exclude_speakers) - speakers)
    if missing:
        raise UserError(f"--exclude-speakers: {', '.join(missing)} not in {utt2spk_path} (speakers: "
                        f"{', '.join(sorted(speakers))})")
    keep = {p[0] for p in utt2spk if len(p) == 2 and p[1] not in exclude_speakers}
    if not keep:
        raise UserError(f"{src}: excluding {', '.join(exclude_speakers)} leaves no utterances")
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name not in ("utt2spk", "phones.ctm", "spk2utt"):
            shutil.copyfile(f, dst / f.name)
    with atomic_write(dst / "utt2spk") as fh:
        fh.writelines(f"{u} {s}\n" for u, s in (p for p in utt2spk if len(p) == 2) if u in keep)
    ctm = src / "phones.ctm"
    if ctm.is_file():
        with atomic_write(dst / "phones.ctm") as fh:
            fh.writelines(line + "\n" for line in ctm.read_text("utf-8").splitlines()
                          if line.split() and line.split()[0] in keep)
    return fix_data_dir(dst)
