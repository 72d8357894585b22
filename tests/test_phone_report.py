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
    assert rep["abx_codes"]["within_speaker_error_pct"] is not None
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
