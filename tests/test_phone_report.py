import json

from vqspeech.alignments import read_textgrid
from vqspeech.bin.encode import main as encode_main
from vqspeech.bin.phone_report import main as report_main


def test_phone_report_from_a_trained_model(trained_tiny, tiny_corpus, tmp_path, capsys):
    ckpt = str(trained_tiny / "checkpoint.pt")
    data = str(tiny_corpus / "data" / "train")
    assert encode_main(["--model", ckpt, "--data-dir", data, "--output", str(tmp_path / "codes.txt"),
                        "--features", str(tmp_path / "f.npz")]) == 0
    out = tmp_path / "report"
    assert report_main(["--model", ckpt, "--codes", str(tmp_path / "codes.txt"), "--features", str(tmp_path / "f.npz"),
                        "--data-dir", data, "--output-dir", str(out), "--examples", "1"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["alignment"]["matched"] == rep["utterances"] > 0
    assert rep["alignment"]["missing_alignment"] == 0 and rep["alignment"]["length_mismatch"] == 0
    assert 0 < rep["chance_accuracy"] <= rep["many_to_one_accuracy"] <= 1
    assert 0 <= rep["pnmi"] <= 1 and rep["codes_used"] <= 16
    assert rep["bitrate_bps"] > rep["bitrate_run_length_bps"] > 0
    # 4 training sentences rarely repeat a triphone within one speaker: across-speaker triplets always exist
    assert rep["abx_codes"]["across_speaker_error_pct"] is not None and rep["abx_codes"]["groups_across"] > 0
    assert rep["abx_features"]["across_speaker_error_pct"] is not None
    assert rep["speaker_from_codes"]["chance"] > 0
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4  # heat map, accuracy bars, usage, one example
    assert "many-to-one" in (out / "report.md").read_text()
    utt = sorted(rep["per_phone_accuracy"])[0]
    grids = sorted((out / "textgrids").glob("*.TextGrid"))
    assert len(grids) == rep["utterances"]
    assert read_textgrid(grids[0], "codes") and read_textgrid(grids[0], "phones")
    assert "many-to-one accuracy" in capsys.readouterr().out
    assert utt


def test_phone_report_with_overlapping_alignment_and_no_abx(trained_tiny, tiny_corpus, tmp_path, capsys):
    """An alignment whose neighbours overlap by a rounding still gives valid TextGrids; a report
    where ABX cannot be computed says n/a, never None%."""
    import shutil

    from praatio import textgrid as tgio

    d = tmp_path / "data"
    shutil.copytree(tiny_corpus / "data" / "test", d)
    lines = (d / "phones.ctm").read_text().splitlines()
    u, ch, start, dur, ph = lines[1].split()
    lines[1] = f"{u} {ch} {start} {float(dur) + 0.004:.3f} {ph}"  # now ends 4 ms into the next phone
    first_utt = u
    (d / "phones.ctm").write_text("\n".join(l for l in lines if l.split()[0] == first_utt) + "\n")
    ckpt = str(trained_tiny / "checkpoint.pt")
    (d / "one").mkdir()
    assert encode_main(["--model", ckpt, "--data-dir", str(d), "--output", str(tmp_path / "codes.txt")]) == 0
    codes = [l for l in (tmp_path / "codes.txt").read_text().splitlines() if l.split()[0] == first_utt]
    (tmp_path / "codes.txt").write_text("\n".join(codes) + "\n")
    out = tmp_path / "report"
    assert report_main(["--model", ckpt, "--codes", str(tmp_path / "codes.txt"), "--data-dir", str(d),
                        "--output-dir", str(out), "--examples", "1"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["alignment"]["overlaps_trimmed_in_textgrids"] == 1
    tg = tgio.openTextgrid(str(out / "textgrids" / f"{first_utt}.TextGrid"), includeEmptyIntervals=False)
    assert tg.getTier("phones").entries
    assert rep["abx_codes"]["across_speaker_error_pct"] is None  # one utterance, one speaker
    printed = capsys.readouterr().out
    for text in (printed, (out / "report.md").read_text()):
        assert "None" not in text and "n/a" in text
    assert (out / "abx.item").read_text().startswith("#file onset offset #phone prev-phone next-phone speaker")


def test_phone_labels_leakage_floor_equals_the_classifier_on_phone_perfect_codes(tiny_corpus):
    """The report's reference figure: the speaker classifier on the reference phone labels. Codes that
    *are* the phone labels (one code per phone) must score exactly that, and many-to-one 100%."""
    import math

    from vqspeech.alignments import fold_intervals, frame_labels, read_ctm
    from vqspeech.phones.report import compute_phone_report

    data = tiny_corpus / "data" / "train"
    alignment = read_ctm(data / "phones.ctm")
    shift = 0.004
    labels = {u: frame_labels(fold_intervals(ivs), math.ceil(ivs[-1].end / shift), shift) for u, ivs in alignment.items()}
    ids = {p: i for i, p in enumerate(sorted({p for lab in labels.values() for p in lab}))}
    codes = {u: [ids[p] for p in lab] for u, lab in labels.items()}
    rep = compute_phone_report(codes, data, shift, len(ids))
    assert rep["many_to_one_accuracy"] == 1.0
    assert rep["speaker_from_phone_labels"]["accuracy"] is not None
    assert rep["speaker_from_phone_labels"]["accuracy"] == rep["speaker_from_codes"]["accuracy"]


def test_codes_outside_the_codebook_and_conflicting_sources_are_refused(tiny_corpus, tmp_path, capsys):
    """--num-codes smaller than the codes in the file is a one-line error, not a report over a wrong
    codebook; --model with --num-codes would silently ignore one of them, so it is refused."""
    import pytest

    from vqspeech.errors import UserError
    from vqspeech.phones.report import compute_phone_report

    data = tiny_corpus / "data" / "train"
    utts = sorted(l.split()[0] for l in (data / "utt2spk").read_text().splitlines())
    codes = {u: [0, 1, 2, 7] * 50 for u in utts}
    with pytest.raises(UserError, match=rf"codes: utterance '{utts[0]}' has code 7 outside 0..3"):
        compute_phone_report(codes, data, 0.004, 4)
    codes[utts[0]] = [-1, 0]
    with pytest.raises(UserError, match=r"has code -1 outside 0..7"):
        compute_phone_report(codes, data, 0.004, 8)
    codes_file = tmp_path / "codes.txt"
    codes_file.write_text("".join(f"{u} 0 1\n" for u in utts))
    assert report_main(["--model", "m.pt", "--num-codes", "8", "--codes", str(codes_file), "--data-dir", str(data),
                        "--output-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--frame-shift-ms and --num-codes replace --model" in err
    assert not (tmp_path / "r").exists()
