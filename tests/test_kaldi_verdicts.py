"""validate-data-dir gives Kaldi's verdicts (utils/validate_data_dir.sh --no-feats), one test per case,
and fix-data-dir (Kaldi's fix_data_dir.sh) leaves a directory that validates."""

import shutil

import pytest

from vqspeech.kaldi_data_dir import read_data_dir
from vqspeech.kaldi_data_dir_fix import fix_data_dir
from vqspeech.errors import DataDirError


@pytest.fixture
def test_dir(tiny_corpus, tmp_path):
    d = tmp_path / "test"
    shutil.copytree(tiny_corpus / "data" / "test", d)
    return d


def _lines(d, name):
    return (d / name).read_text("utf-8").splitlines(keepends=True)


def _first_utt(d):
    return _lines(d, "utt2spk")[0].split()[0]


def _edit_text(d, fn):
    lines = _lines(d, "text")
    lines[0] = fn(lines[0])
    (d / "text").write_text("".join(lines), "utf-8")


def _per_utt_table(d, name, value="x", skip_first=False):
    utts = [line.split()[0] for line in _lines(d, "utt2spk")]
    (d / name).write_text("".join(f"{u} {value}\n" for u in utts[1 if skip_first else 0:]))


# (case, how the copy of data/test is changed, Kaldi's verdict, the message we print)
CASES = [
    ("none", lambda d: None, "accept", None),
    ("text misses the first utterance", lambda d: (d / "text").write_text("".join(_lines(d, "text")[1:])),
     "reject", "has no transcript in text"),
    ("utt2spk reverse-sorted", lambda d: (d / "utt2spk").write_text("".join(reversed(_lines(d, "utt2spk")))),
     "reject", "not sorted"),
    ("~/ path in wav.scp", lambda d: (d / "wav.scp").write_text(
        "".join(line.split()[0] + " ~/x.wav\n" if i == 0 else line for i, line in enumerate(_lines(d, "wav.scp")))),
     "reject", "~"),
    ("utt2dur value 0", lambda d: (d / "utt2dur").write_text(
        "".join(line.split()[0] + " 0\n" if i == 0 else line for i, line in enumerate(_lines(d, "utt2dur")))),
     "reject", "duration must be a positive number"),
    ("CR at the end of a text line", lambda d: _edit_text(d, lambda s: s.rstrip("\n") + "\r\n"),
     "reject", "CR (0x0D)"),
    ("<s> in text", lambda d: _edit_text(d, lambda s: s.rstrip("\n") + " <s>\n"), "reject", "illegal symbol <s>"),
    ("</s> in text", lambda d: _edit_text(d, lambda s: s.replace(" ", " </s> ", 1)), "reject", "illegal symbol </s>"),
    ("#0 in text", lambda d: _edit_text(d, lambda s: s.rstrip("\n") + " #0\n"), "reject", "illegal symbol #0"),
    ("#0 inside a word (grep -w does not match)", lambda d: _edit_text(d, lambda s: s.rstrip("\n") + " a#0b\n"),
     "accept", None),
    ("a non-breaking space in text", lambda d: _edit_text(d, lambda s: s.replace(" ", " \u00a0", 2)),
     "reject", "U+00A0"),
    ("spk2utt without a final newline", lambda d: (d / "spk2utt").write_text((d / "spk2utt").read_text().rstrip("\n")),
     "reject", "no final newline"),
    ("utt2spk line with 1 field (stricter than Kaldi)", lambda d: (d / "utt2spk").write_text(
        "".join(line.split()[0] + "\n" if i == 0 else line for i, line in enumerate(_lines(d, "utt2spk")))),
     "reject", "expected 2 fields"),
    ("utt2spk line with 3 fields (stricter than Kaldi)", lambda d: (d / "utt2spk").write_text(
        "".join(line.rstrip("\n") + " extra\n" if i == 0 else line for i, line in enumerate(_lines(d, "utt2spk")))),
     "reject", "expected 2 fields"),
] + [
    (f"{name} missing one utterance", lambda d, name=name, v=v: _per_utt_table(d, name, v, skip_first=True),
     "reject", "has no line for")
    for name, v in (("utt2lang", "en"), ("utt2uniq", "u"), ("vad.scp", "v.ark:3"), ("feats.scp", "f.ark:3"),
                    ("utt2num_frames", "100"), ("utt2warp", "1.0"))
] + [
    ("utt2lang complete", lambda d: _per_utt_table(d, "utt2lang", "en"), "accept", None),
    ("utt2num_frames not an integer", lambda d: _per_utt_table(d, "utt2num_frames", "12.5"), "reject",
     "positive integer"),
    ("utt2warp out of (0.5, 1.5)", lambda d: _per_utt_table(d, "utt2warp", "1.5"), "reject", "warp factor"),
    ("utt2warp inside", lambda d: _per_utt_table(d, "utt2warp", "1.1"), "accept", None),
]


def _speaker_table(d, name, value, skip_first=False):
    spks = [line.split()[0] for line in _lines(d, "spk2utt")]
    (d / name).write_text("".join(f"{s} {value}\n" for s in spks[1 if skip_first else 0:]))


CASES += [
    (f"{name} missing one speaker", lambda d, name=name, v=v: _speaker_table(d, name, v, skip_first=True),
     "reject", "has no line for") for name, v in (("spk2gender", "m"), ("cmvn.scp", "c.ark:1"), ("spk2warp", "1.0"))
] + [
    ("spk2gender value x", lambda d: _speaker_table(d, "spk2gender", "x"), "reject", "m or f"),
    ("spk2gender complete", lambda d: _speaker_table(d, "spk2gender", "f"), "accept", None),
    ("spk2warp 0.5", lambda d: _speaker_table(d, "spk2warp", "0.5"), "reject", "warp factor"),
    ("reco2dur missing one recording", lambda d: _per_utt_table(d, "reco2dur", "1.0", skip_first=True),
     "reject", "has no line for"),
    ("reco2dur value -1", lambda d: _per_utt_table(d, "reco2dur", "-1"), "reject", "positive duration"),
    ("reco2file_and_channel channel C", lambda d: _per_utt_table(d, "reco2file_and_channel", "f C"), "reject",
     "'<file> A'"),
    ("reco2file_and_channel channel A", lambda d: _per_utt_table(d, "reco2file_and_channel", "f A"), "accept", None),
]


@pytest.mark.parametrize("case,change,verdict,message", CASES, ids=[c[0] for c in CASES])
def test_verdict_matches_kaldi(test_dir, case, change, verdict, message):
    change(test_dir)
    if verdict == "accept":
        read_data_dir(test_dir)
    else:
        with pytest.raises(DataDirError, match=None) as exc:
            read_data_dir(test_dir)
        text = str(exc.value)
        assert message in text and str(test_dir) in text and "\n" not in text, text


def test_fix_data_dir_filters_to_the_intersection_and_validates(test_dir):
    utts = [line.split()[0] for line in _lines(test_dir, "utt2spk")]
    # text misses the first utterance, utt2lang the second, wav.scp the third; tables unsorted, duplicated,
    # spk2utt stale and without its final newline
    (test_dir / "text").write_text("".join(reversed(_lines(test_dir, "text")[1:])))
    (test_dir / "utt2lang").write_text("".join(f"{u} en\n" for u in utts if u != utts[1]) + f"{utts[0]} fr\n")
    (test_dir / "wav.scp").write_text("".join(line for line in _lines(test_dir, "wav.scp")
                                              if not line.startswith(utts[2] + " ")))
    (test_dir / "spk2utt").write_text("stale x")
    with pytest.raises(DataDirError):
        read_data_dir(test_dir)
    report = fix_data_dir(test_dir)
    assert report.utterances_before == len(utts) and report.utterances_after == len(utts) - 3
    assert report.dropped["utterances missing from text"] == [utts[0]]
    assert report.dropped["utterances missing from utt2lang"] == [utts[1]]
    assert report.dropped["utterances missing from wav.scp"] == [utts[2]]
    assert report.duplicates == {"utt2lang": 1}
    dd = read_data_dir(test_dir)
    assert sorted(dd.utt2spk) == sorted(utts[3:]) and dd.optional_tables == ["utt2lang"]


def test_fix_data_dir_with_segments(tmp_path, tiny_corpus):
    src = read_data_dir(tiny_corpus / "data" / "test")
    utts = src.utterances[:4]
    d = tmp_path / "seg"
    d.mkdir()
    # one recording per utterance, each cut into one segment; recording of the last one is missing
    (d / "wav.scp").write_text("".join(f"rec_{u} {src.audio_of(u)[0]}\n" for u in utts[:-1]))
    (d / "segments").write_text("".join(f"{u} rec_{u} 0.0 0.5\n" for u in utts))
    (d / "utt2spk").write_text("".join(f"{u} {src.utt2spk[u]}\n" for u in utts))
    (d / "reco2dur").write_text("".join(f"rec_{u} 2.0\n" for u in utts))
    report = fix_data_dir(d)
    assert report.utterances_after == 3
    assert report.dropped == {"utterances whose recording is missing from wav.scp": [utts[-1]]}
    dd = read_data_dir(d)
    assert len(dd.segments) == 3 and "reco2dur" in dd.optional_tables
    assert f"rec_{utts[-1]}" not in (d / "reco2dur").read_text()
