"""Kaldi-style data directories: read, write and validate.

A data directory holds plain-text tables, one ``<key> <value>`` per line, sorted under
C collation (byte order) with unique keys:

- ``wav.scp``   recording id -> audio path (utterance id when there is no ``segments``)
- ``utt2spk``   utterance id -> speaker id; utterance ids start with their speaker id
- ``spk2utt``   speaker id -> its utterance ids (derived from ``utt2spk``)
- ``text``      utterance id -> transcript (optional)
- ``segments``  utterance id -> ``<recording> <start> <end>`` in seconds (optional)
- ``utt2dur``   utterance id -> duration in seconds (optional)
- ``phones.ctm`` phone alignment, see :mod:`vqspeech.alignments` (optional)

The checks follow Kaldi's ``utils/validate_data_dir.sh``; every error names the file,
the line number and what is wrong.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataDirError
from .fileio import atomic_write
from .ids import check_id

TABLES = ("wav.scp", "utt2spk", "spk2utt", "text", "segments", "utt2dur")


@dataclass
class Segment:
    recording: str
    start: float
    end: float


@dataclass
class DataDir:
    """In-memory view of a Kaldi data directory (all tables keyed by id, insertion order = file order)."""

    wav_scp: dict[str, str] = field(default_factory=dict)
    utt2spk: dict[str, str] = field(default_factory=dict)
    text: dict[str, str] | None = None
    segments: dict[str, Segment] | None = None
    utt2dur: dict[str, float] | None = None
    path: Path | None = None
    optional_tables: list[str] = field(default_factory=list)   # Kaldi's other tables found and checked

    @property
    def utterances(self) -> list[str]:
        return sorted(self.utt2spk, key=_c_key)

    @property
    def speakers(self) -> list[str]:
        return sorted(set(self.utt2spk.values()), key=_c_key)

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for utt in self.utterances:
            out.setdefault(self.utt2spk[utt], []).append(utt)
        return {spk: out[spk] for spk in sorted(out, key=_c_key)}

    def audio_of(self, utt: str) -> tuple[str, float, float | None]:
        """Return (path, start seconds, end seconds or None) of an utterance's audio."""
        if self.segments is not None:
            seg = self.segments[utt]
            return self._resolve(self.wav_scp[seg.recording]), seg.start, seg.end
        return self._resolve(self.wav_scp[utt]), 0.0, None

    def _resolve(self, wav: str) -> str:
        # Relative paths in wav.scp are relative to the working directory (Kaldi's rule);
        # fall back to the data dir's own location so moved corpora keep working.
        if os.path.isabs(wav) or os.path.exists(wav) or self.path is None:
            return wav
        alt = self.path / wav
        return str(alt) if alt.exists() else wav


def _c_key(s: str) -> bytes:
    """Sort key for C collation (LC_ALL=C sort compares bytes)."""
    return s.encode("utf-8")


def read_table(path: Path, min_fields: int = 2, max_fields: int | None = 2,
               final_newline: bool = True) -> list[tuple[int, str, str]]:
    """Read a ``<key> <rest>`` table; return [(line_no, key, rest)].

    ``max_fields=None`` keeps the rest of the line as one value (``text``, ``spk2utt``).
    Raises DataDirError naming file and line for non-UTF-8, empty lines, bad field counts and
    (like Kaldi's check_sorted_and_uniq) a last line without its newline unless
    ``final_newline`` is false (``fix-data-dir`` reads such files to repair them).
    """
    rows = []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataDirError(f"{path}: cannot read ({exc.strerror})") from None
    if final_newline and raw and not raw.endswith(b"\n"):
        last = raw.count(b"\n") + 1
        raise DataDirError(f"{path}:{last}: the last line has no final newline "
                           f"(Kaldi rejects the file; 'vqspeech fix-data-dir' adds it)")
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline
    for no, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise DataDirError(f"{path}:{no}: line is not valid UTF-8") from None
        text = text.rstrip("\r")
        parts = text.split()
        if not parts:
            raise DataDirError(f"{path}:{no}: empty line")
        if len(parts) < min_fields or (max_fields is not None and len(parts) > max_fields):
            want = f"{min_fields}" if max_fields == min_fields else f"at least {min_fields}"
            raise DataDirError(f"{path}:{no}: expected {want} fields, got {len(parts)}: {text.strip()!r}")
        key = parts[0]
        rest = text.strip()[len(key):].strip()
        rows.append((no, key, rest))
    return rows


def _check_sorted_unique(path: Path, rows: list[tuple[int, str, str]]) -> None:
    prev = None
    seen: dict[str, int] = {}
    for no, key, _ in rows:
        if key in seen:
            raise DataDirError(f"{path}:{no}: duplicate key {key!r} (first on line {seen[key]})")
        seen[key] = no
        if prev is not None and _c_key(key) < _c_key(prev):
            raise DataDirError(f"{path}:{no}: not sorted (LC_ALL=C): {key!r} comes after {prev!r}; "
                               f"run 'LC_ALL=C sort -k1,1 -u'")
        prev = key


def _table(path: Path, min_fields=2, max_fields=2) -> tuple[dict[str, str], dict[str, int]]:
    rows = read_table(path, min_fields, max_fields)
    _check_sorted_unique(path, rows)
    return {k: v for _, k, v in rows}, {k: n for n, k, _ in rows}


def read_data_dir(path: str | os.PathLike, check_audio: bool = False) -> DataDir:
    """Read and validate a data directory; raise DataDirError on the first problem."""
    path = Path(path)
    if not path.is_dir():
        raise DataDirError(f"{path}: data directory not found")
    for required in ("wav.scp", "utt2spk"):
        if not (path / required).is_file():
            raise DataDirError(f"{path / required}: required file missing")

    wav_scp, wav_lines = _table(path / "wav.scp")
    for key, no in wav_lines.items():
        check_id(key, f"{path / 'wav.scp'}:{no}", "recording id", DataDirError)
    for key, value in wav_scp.items():
        if value.startswith("~"):
            raise DataDirError(f"{path / 'wav.scp'}:{wav_lines[key]}: do not use a tilde (~) path in wav.scp; "
                               f"audio is opened without shell expansion")
        if value.endswith("|"):
            raise DataDirError(f"{path / 'wav.scp'}:{wav_lines[key]}: piped commands are not supported; "
                               f"give a file path")
    utt2spk, spk_lines = _table(path / "utt2spk")
    if not utt2spk:
        raise DataDirError(f"{path / 'utt2spk'}: empty file")
    dd = DataDir(wav_scp=wav_scp, utt2spk=utt2spk, path=path)

    for utt, spk in utt2spk.items():
        check_id(utt, f"{path / 'utt2spk'}:{spk_lines[utt]}", "utterance id", DataDirError)
        check_id(spk, f"{path / 'utt2spk'}:{spk_lines[utt]}", "speaker id", DataDirError)
        if not utt.startswith(spk):
            raise DataDirError(f"{path / 'utt2spk'}:{spk_lines[utt]}: utterance id {utt!r} does not start "
                               f"with its speaker id {spk!r} (Kaldi requires the prefix for sorting)")

    spk2utt_path = path / "spk2utt"
    if spk2utt_path.is_file():
        rows = read_table(spk2utt_path, 2, None)
        _check_sorted_unique(spk2utt_path, rows)
        expected = dd.spk2utt
        for no, spk, rest in rows:
            utts = rest.split()
            if spk not in expected:
                raise DataDirError(f"{spk2utt_path}:{no}: speaker {spk!r} is not in utt2spk")
            if utts != expected[spk]:
                missing = sorted(set(expected[spk]) - set(utts))
                extra = sorted(set(utts) - set(expected[spk]))
                what = (f"missing {missing[:3]}" if missing else "") + (f" extra {extra[:3]}" if extra else "")
                raise DataDirError(f"{spk2utt_path}:{no}: disagrees with utt2spk for speaker {spk!r}: "
                                   f"{what.strip() or 'utterances not sorted'}")
        listed = {spk for _, spk, _ in rows}
        for spk in expected:
            if spk not in listed:
                raise DataDirError(f"{spk2utt_path}: speaker {spk!r} from utt2spk is missing")
    else:
        raise DataDirError(f"{spk2utt_path}: required file missing "
                           f"(create it with 'vqspeech fix-data-dir' or utils/utt2spk_to_spk2utt.pl)")

    seg_path = path / "segments"
    if seg_path.is_file():
        rows = read_table(seg_path, 4, 4)
        _check_sorted_unique(seg_path, rows)
        segments = {}
        for no, utt, rest in rows:
            rec, start_s, end_s = rest.split()
            try:
                start, end = float(start_s), float(end_s)
            except ValueError:
                raise DataDirError(f"{seg_path}:{no}: start/end must be numbers: {rest!r}") from None
            if start < 0 or end <= start:
                raise DataDirError(f"{seg_path}:{no}: need 0 <= start < end, got start={start} end={end}")
            if rec not in wav_scp:
                raise DataDirError(f"{seg_path}:{no}: recording {rec!r} is not in wav.scp")
            if utt not in utt2spk:
                raise DataDirError(f"{seg_path}:{no}: utterance {utt!r} is not in utt2spk")
            segments[utt] = Segment(rec, start, end)
        for utt in utt2spk:
            if utt not in segments:
                raise DataDirError(f"{path / 'utt2spk'}:{spk_lines[utt]}: utterance {utt!r} has no line "
                                   f"in segments")
        dd.segments = segments
    else:
        for utt, no in spk_lines.items():
            if utt not in wav_scp:
                raise DataDirError(f"{path / 'utt2spk'}:{no}: utterance {utt!r} is not in wav.scp")
        for utt, no in wav_lines.items():
            if utt not in utt2spk:
                raise DataDirError(f"{path / 'wav.scp'}:{no}: utterance {utt!r} is not in utt2spk")

    text_path = path / "text"
    if text_path.is_file():
        rows = read_table(text_path, 1, None)
        for no, line in enumerate(_raw_lines(text_path)[: len(rows)], start=1):
            check_text_line(text_path, no, line)
        _check_sorted_unique(text_path, rows)
        dd.text = {}
        for no, utt, rest in rows:
            if utt not in utt2spk:
                raise DataDirError(f"{text_path}:{no}: utterance {utt!r} is not in utt2spk")
            dd.text[utt] = rest
        for utt, no in spk_lines.items():
            if utt not in dd.text:
                raise DataDirError(f"{path / 'utt2spk'}:{no}: utterance {utt!r} has no transcript in text")

    dur_path = path / "utt2dur"
    if dur_path.is_file():
        rows = read_table(dur_path, 2, 2)
        _check_sorted_unique(dur_path, rows)
        dd.utt2dur = {}
        for no, utt, rest in rows:
            if utt not in utt2spk:
                raise DataDirError(f"{dur_path}:{no}: utterance {utt!r} is not in utt2spk")
            try:
                dur = float(rest)
            except ValueError:
                dur = -1.0
            if not dur > 0:
                raise DataDirError(f"{dur_path}:{no}: duration must be a positive number, got {rest!r}")
            dd.utt2dur[utt] = dur

    dd.optional_tables = check_optional_tables(dd)
    if check_audio:
        _check_audio(dd)
    return dd


def _check_audio(dd: DataDir) -> None:
    from .audio import audio_info

    assert dd.path is not None
    durations: dict[str, float] = {}
    for no, (key, wav) in enumerate(dd.wav_scp.items(), start=1):
        resolved = dd._resolve(wav)
        if not os.path.isfile(resolved):
            raise DataDirError(f"{dd.path / 'wav.scp'}:{no}: audio file not found: {wav}")
        frames, sr, _ = audio_info(resolved)
        if frames == 0:
            raise DataDirError(f"{dd.path / 'wav.scp'}:{no}: audio file has zero samples: {wav}")
        durations[key] = frames / sr
    if dd.segments is not None:
        seg_lines = {utt: no for no, utt in enumerate(dd.segments, start=1)}
        for utt, seg in dd.segments.items():
            if seg.end > durations[seg.recording] + 0.01:
                raise DataDirError(f"{dd.path / 'segments'}:{seg_lines[utt]}: segment ends at {seg.end:.3f}s, "
                                   f"past the end of recording {seg.recording!r} "
                                   f"({durations[seg.recording]:.3f}s)")


def write_data_dir(path: str | os.PathLike, dd: DataDir) -> None:
    """Write all tables of ``dd`` (sorted, spk2utt derived) atomically, table by table."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    write_table(path / "wav.scp", dd.wav_scp)
    write_table(path / "utt2spk", dd.utt2spk)
    write_table(path / "spk2utt", {s: " ".join(u) for s, u in dd.spk2utt.items()})
    if dd.text is not None:
        write_table(path / "text", dd.text)
    if dd.segments is not None:
        write_table(path / "segments", {u: f"{s.recording} {s.start:.3f} {s.end:.3f}"
                                          for u, s in dd.segments.items()})
    if dd.utt2dur is not None:
        write_table(path / "utt2dur", {u: f"{d:.3f}" for u, d in dd.utt2dur.items()})


def write_table(path: Path, table: dict[str, str]) -> None:
    """Write a ``<key> <value>`` table sorted in C order, atomically."""
    with atomic_write(path) as fh:
        for key in sorted(table, key=_c_key):
            fh.write(f"{key} {table[key]}\n")


# --- the text checks of Kaldi's utils/validate_text.pl and validate_data_dir.sh ------------------------
# Perl's \s under 'unicode_strings', less the TAB, LF and SPACE that Kaldi allows (CR is reported apart).
_DISALLOWED_SPACE = set("\x0b\x0c\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {chr(c) for c in range(0x2000, 0x200B)}
# 'grep -w' under LC_ALL=C: the symbol with no [A-Za-z0-9_] on either side, anywhere on the line.
_ILLEGAL_SYMBOLS = [(sym, re.compile(rf"(?<![A-Za-z0-9_]){re.escape(sym)}(?![A-Za-z0-9_])"))
                    for sym in ("<s>", "</s>", "#0")]


def check_text_line(path: Path, no: int, line: str) -> None:
    """Kaldi's verdict on one decoded line of ``text`` (without its newline): DataDirError or nothing."""
    if "\r" in line:
        raise DataDirError(f"{path}:{no}: contains a CR (0x0D) character (Windows line ending?); Kaldi rejects it")
    for ch in line:
        if ch in _DISALLOWED_SPACE:
            raise DataDirError(f"{path}:{no}: contains the disallowed Unicode whitespace U+{ord(ch):04X}; "
                               f"only space and tab may separate words")
    for sym, pattern in _ILLEGAL_SYMBOLS:
        if pattern.search(line):
            raise DataDirError(f"{path}:{no}: contains the illegal symbol {sym} (reserved by Kaldi's "
                               f"language models)")


def _raw_lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8", errors="replace").split("\n")


# Optional tables of Kaldi's validator: name -> (keyed by, value check, what the value must be).
def _positive(v: str) -> bool:
    try:
        return float(v) > 0
    except ValueError:
        return False


def _warp(v: str) -> bool:
    try:
        return 0.5 < float(v) < 1.5
    except ValueError:
        return False


def _positive_int(v: str) -> bool:
    try:
        return float(v) > 0 and float(v) == int(float(v))
    except (ValueError, OverflowError):
        return False


OPTIONAL_TABLES: dict[str, tuple[str, int | None, object, str]] = {
    # name: (key set, fields (None: any >= 2), value check or None, description of a good value)
    "utt2lang": ("utt", 2, None, ""),
    "utt2uniq": ("utt", 2, None, ""),
    "vad.scp": ("utt", 2, None, ""),
    "feats.scp": ("utt", 2, None, ""),
    "utt2warp": ("utt", 2, _warp, "a warp factor in (0.5, 1.5)"),
    "utt2num_frames": ("utt", 2, _positive_int, "a positive integer"),
    # Not Kaldi's: vqspeech shift-voices' source of each utterance (checked, fixed and subset alike).
    "utt2origin": ("utt", 2, None, ""),
    "spk2gender": ("spk", 2, lambda v: v in ("m", "f"), "m or f"),
    "spk2warp": ("spk", 2, _warp, "a warp factor in (0.5, 1.5)"),
    "cmvn.scp": ("spk", 2, None, ""),
    "reco2dur": ("reco", 2, _positive, "a positive duration"),
    # Kaldi accepts channel "1" with a warning; A and B are the documented values.
    "reco2file_and_channel": ("reco", 3, lambda v: v.split()[-1] in ("A", "B", "1"), "'<file> A' or '<file> B'"),
}


def check_optional_tables(dd: "DataDir") -> list[str]:
    """Check every optional Kaldi table present in ``dd.path``; return the names found.

    Each must be sorted and unique with a final newline, have exactly the keys of the table it
    belongs to (utterances of utt2spk, speakers of spk2utt, recordings of wav.scp / segments)
    and well-formed values; DataDirError names file and line otherwise.
    """
    assert dd.path is not None
    keysets = {"utt": set(dd.utt2spk), "spk": set(dd.utt2spk.values()),
               "reco": set(dd.wav_scp) if dd.segments is None else {s.recording for s in dd.segments.values()}}
    owners = {"utt": "utt2spk", "spk": "spk2utt", "reco": "wav.scp" if dd.segments is None else "segments"}
    found = []
    for name, (keyed, fields, ok, want) in OPTIONAL_TABLES.items():
        path = dd.path / name
        if not path.is_file():
            continue
        found.append(name)
        rows = read_table(path, fields or 2, fields)
        _check_sorted_unique(path, rows)
        keys = set()
        for no, key, value in rows:
            if key not in keysets[keyed]:
                raise DataDirError(f"{path}:{no}: {key!r} is not in {owners[keyed]}")
            if ok is not None and not ok(value):
                raise DataDirError(f"{path}:{no}: value {value!r} must be {want}")
            keys.add(key)
        missing = sorted(keysets[keyed] - keys, key=_c_key)
        if missing:
            raise DataDirError(f"{path}: has no line for {missing[0]!r}"
                               + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
                               + f" of {owners[keyed]} (Kaldi requires the same list)")
    return found
