"""``vqspeech import-alignments``: TextGrid, TIMIT .PHN and HTK .lab files into a data directory's
phones.ctm, matched to utterances by file name; mismatches counted; bad input is a one-line error."""

from pathlib import Path

import pytest

from vqspeech.alignment_import import import_alignments, utterance_of
from vqspeech.alignments import PhoneInterval, read_ctm, write_textgrid
from vqspeech.bin.import_alignments import main
from vqspeech.errors import AlignmentError


def _data_dir(root: Path, utts: dict[str, str]) -> Path:
    """A data directory of the given {utt: speaker} (the audio is never read)."""
    d = root / "data"
    d.mkdir()
    keys = sorted(utts, key=str.encode)
    (d / "wav.scp").write_text("".join(f"{u} /nonexistent/{u}.wav\n" for u in keys))
    (d / "utt2spk").write_text("".join(f"{u} {utts[u]}\n" for u in keys))
    spk2utt = {}
    for u in keys:
        spk2utt.setdefault(utts[u], []).append(u)
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(v)}\n" for s, v in sorted(spk2utt.items())))
    return d


def _ms(intervals):
    """(phone, start, end) with the times in whole milliseconds, as a CTM stores them."""
    return [(iv.phone, round(iv.start * 1000), round(iv.end * 1000)) for iv in intervals]


def test_textgrids_become_the_ctm(tmp_path, capsys):
    d = _data_dir(tmp_path, {"awb_a01": "awb", "awb_a02": "awb", "slt_a01": "slt"})
    mfa = tmp_path / "mfa" / "awb"
    mfa.mkdir(parents=True)
    one = [PhoneInterval(0.0, 0.12, "sil"), PhoneInterval(0.12, 0.2, "HH"), PhoneInterval(0.2, 0.31, "AH0")]
    two = [PhoneInterval(0.05, 0.4, "IY1")]  # a gap before the first phone stays a gap
    write_textgrid(mfa / "awb_a01.TextGrid", {"words": [PhoneInterval(0.12, 0.31, "huh")], "phones": one}, 0.5)
    write_textgrid(mfa / "awb_a02.TextGrid", {"phones": two}, 0.5)
    (mfa / "notes.txt").write_text("not an alignment\n")
    write_textgrid(mfa / "ked_a09.TextGrid", {"phones": two}, 0.5)  # no such utterance

    assert main(["--data-dir", str(d), str(tmp_path / "mfa")]) == 0
    ctm = read_ctm(d / "phones.ctm")
    assert list(ctm) == ["awb_a01", "awb_a02"]
    assert _ms(ctm["awb_a01"]) == [("sil", 0, 120), ("HH", 120, 200), ("AH0", 200, 310)]
    assert _ms(ctm["awb_a02"]) == [("IY1", 50, 400)]
    printed = capsys.readouterr().out
    assert "2 utterances, 4 phones, from 3 files" in printed
    assert "1 of 3 utterances have no alignment file (e.g. slt_a01)" in printed
    assert "1 files name no utterance" in printed and "ked_a09.TextGrid" in printed

    # another tier by name; labels kept as written
    got = import_alignments([mfa / "awb_a01.TextGrid"], ["awb_a01"], tier="words")
    assert got.alignment == {"awb_a01": [PhoneInterval(0.12, 0.31, "huh")]}


def test_timit_files_by_folder_and_stem_folded_to_39(tmp_path):
    d = _data_dir(tmp_path, {"fcjf0_sa1": "fcjf0", "fcjf0_sx37": "fcjf0"})
    spk = tmp_path / "TIMIT" / "TRAIN" / "DR1" / "FCJF0"
    spk.mkdir(parents=True)
    # samples at 16 kHz: 3050 / 16000 = 0.190625 s
    (spk / "SA1.PHN").write_text("0 3050 h#\n3050 4559 sh\n4559 5723 ix\n5723 6100 q\n6100 7000 dcl\n")
    assert main(["--data-dir", str(d), "--fold", "timit39", str(tmp_path / "TIMIT")]) == 0
    ctm = read_ctm(d / "phones.ctm")
    assert list(ctm) == ["fcjf0_sa1"]
    # h# and dcl fold to sil, ix to ih, q is dropped; times are the CTM's milliseconds
    # (4559 / 16000 = 0.2849 s; 6100 / 16000 = 0.38125 s, written 0.381; 7000 / 16000 = 0.4375 s)
    assert _ms(ctm["fcjf0_sa1"]) == [("sil", 0, 191), ("sh", 191, 285), ("ih", 285, 358), ("sil", 381, 438)]

    # without folding the labels stay TIMIT's 61, and the sample rate scales the times
    got = import_alignments([spk / "SA1.PHN"], ["fcjf0_sa1"], sample_rate=8000)
    assert [iv.phone for iv in got.alignment["fcjf0_sa1"]] == ["h#", "sh", "ix", "q", "dcl"]
    assert got.alignment["fcjf0_sa1"][0].end == 3050 / 8000


def test_htk_full_context_labels_give_the_centre_phone(tmp_path):
    lab = tmp_path / "arctic_a0001.lab"
    lab.write_text("0 2000000 x^x-pau+ao=th@x_x\n2000000 3250000 pau^ao-th+er=r@1_2\n")
    got = import_alignments([lab], ["arctic_a0001"])
    assert got.alignment["arctic_a0001"] == [PhoneInterval(0.0, 0.2, "pau"), PhoneInterval(0.2, 0.325, "th")]


def test_utterance_names():
    utts = {"p225_001", "fcjf0_sa1"}
    assert utterance_of(Path("x/p225_001.TextGrid"), utts) == "p225_001"
    assert utterance_of(Path("dr1/FCJF0/SA1.PHN"), utts) == "fcjf0_sa1"
    assert utterance_of(Path("dr1/fcjf0/sa2.phn"), utts) is None


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_input_is_one_line_and_keeps_what_was_written(tmp_path, capsys):
    d = _data_dir(tmp_path, {"awb_a01": "awb", "awb_a02": "awb"})
    src = tmp_path / "src"
    src.mkdir()
    (src / "awb_a01.phn").write_text("0 1600 sil\n")
    (d / "phones.ctm").write_text("awb_a01 1 0.000 0.100 sil\n")
    before = (d / "phones.ctm").read_text()

    assert "phones.ctm exists; --force replaces it" in _error(capsys, ["--data-dir", str(d), str(src)])
    (src / "awb_a02.lab").write_text("0 1000000 sil\n1000000 1000000 aa\n")
    assert "awb_a02.lab: phone 'aa' ends at 0.1000 s, not after its start" in _error(
        capsys, ["--data-dir", str(d), "--force", str(src)])
    (src / "awb_a02.lab").unlink()
    (src / "awb_a02.phn").write_text("0 1600 sil\n1600 x aa\n")
    assert "awb_a02.phn:2: expected '<start sample> <end sample> <phone>'" in _error(
        capsys, ["--data-dir", str(d), "--force", str(src)])
    (src / "awb_a02.phn").unlink()
    (src / "sub").mkdir()
    (src / "sub" / "AWB_A01.PHN").write_text("0 1600 sil\n")
    assert "both align utterance 'awb_a01'" in _error(capsys, ["--data-dir", str(d), "--force", str(src)])
    assert "no such file or folder" in _error(capsys, ["--data-dir", str(d), "--force", str(tmp_path / "none")])
    assert "no .textgrid alignment files" in _error(
        capsys, ["--data-dir", str(d), "--force", "--format", "textgrid", str(src)])
    other = tmp_path / "other"
    other.mkdir()
    (other / "ked_b01.lab").write_text("0 100000 a\n")
    assert "none of the 1 alignment files names an utterance" in _error(
        capsys, ["--data-dir", str(d), "--force", str(other)])
    # --allow-none (what the recipes pass for every set): say so, write nothing, exit 0
    assert main(["--data-dir", str(d), "--force", "--allow-none", str(other)]) == 0
    assert "none of the 1 alignment files names one of its utterances; nothing written" in capsys.readouterr().out
    (other / "ked_b01.lab").write_text("")
    with pytest.raises(AlignmentError, match="no phone intervals"):
        import_alignments([other / "ked_b01.lab"], ["ked_b01"])
    assert (d / "phones.ctm").read_text() == before  # nothing was replaced by a failed import
