"""TIMIT preparation on a TIMIT-shaped tree: NIST SPHERE audio, .PHN phone boundaries, .TXT
transcripts, in the LDC's upper case and in a lower-case copy; the core test set; the recipe."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vqspeech.alignments import read_ctm
from vqspeech.audio import load_audio
from vqspeech.bin.prepare_timit import main
from vqspeech.corpus_prep.timit import CORE_TEST_SPEAKERS, prepare_timit
from vqspeech.errors import UserError
from vqspeech.kaldi_data_dir import read_data_dir

REPO = Path(__file__).resolve().parents[1]
SENTENCES = ("SA1", "SI648", "SX288", "SX378")


def _speech(text: str) -> np.ndarray:
    """16 kHz int16 speech (flite) or, without flite, a tone of a length that depends on the text."""
    if shutil.which("flite"):
        out = Path(os.environ.get("TMPDIR", "/tmp")) / f"timit_{os.getpid()}.wav"
        subprocess.run(["flite", "-voice", "kal16", "-t", text, "-o", str(out)], check=True)
        x, sr = sf.read(out, dtype="int16")
        out.unlink()
        assert sr == 16000
        return x
    return (3000 * np.sin(np.arange(4000 + 100 * len(text)) * 0.05)).astype(np.int16)


def _fake_timit(root: Path, lower: bool = False) -> dict[str, int]:
    """TRAIN/DR1/{FCJF0,MDAC0}, TEST/DR1/{MDAB0 (core), FAKS0 (not core)}; returns {utt: samples}."""
    lengths = {}
    for part, speakers in (("TRAIN", ("FCJF0", "MDAC0")), ("TEST", ("MDAB0", "FAKS0"))):
        for spk in speakers:
            folder = root / part / "DR1" / spk
            if lower:
                folder = root / part.lower() / "dr1" / spk.lower()
            folder.mkdir(parents=True)
            for sent in SENTENCES:
                text = f"She had your {sent.lower()} suit in greasy wash water."
                x = _speech(text)
                n = len(x)
                name = sent.lower() if lower else sent
                sf.write(folder / f"{name}.{'wav' if lower else 'WAV'}", x, 16000, format="NIST", subtype="PCM_16")
                if lower:  # some copies carry a converted RIFF file beside the SPHERE one
                    sf.write(folder / f"{name}.wav.wav", np.zeros(10, np.int16), 16000)
                (folder / f"{name}.{'phn' if lower else 'PHN'}").write_text(
                    f"0 1600 h#\n1600 3200 sh\n3200 4000 q\n4000 {n - 1600} ix\n{n - 1600} {n} h#\n")
                (folder / f"{name}.{'txt' if lower else 'TXT'}").write_text(f"0 {n} {text}\n")
                lengths[f"{spk.lower()}_{sent.lower()}"] = n
    return lengths


def test_upper_case_tree_core_test_set_and_39_phones(tmp_path, capsys):
    lengths = _fake_timit(tmp_path / "TIMIT")
    assert {"mdab0"} <= CORE_TEST_SPEAKERS and "faks0" not in CORE_TEST_SPEAKERS
    assert main(["--timit-root", str(tmp_path / "TIMIT"), "--out-dir", str(tmp_path / "data"), "--dev-every", "3"]) == 0
    printed = capsys.readouterr().out
    # TRAIN: 2 speakers x 3 sentences (SA left out); every 3rd in speaker order goes to dev
    assert ("TIMIT: train=4 utterances of 2 speakers, dev=2 utterances of 2 speakers, "
            "test=3 utterances of 1 speaker") in printed
    assert "left out SA sentences (3)" in printed  # 2 TRAIN speakers and the core test speaker; FAKS0 was never read
    data = {name: read_data_dir(tmp_path / "data" / name, check_audio=True) for name in ("train", "dev", "test")}
    assert data["dev"].utterances == ["fcjf0_sx378", "mdac0_sx378"]
    assert data["train"].utterances == ["fcjf0_si648", "fcjf0_sx288", "mdac0_si648", "mdac0_sx288"]
    assert data["test"].utterances == ["mdab0_si648", "mdab0_sx288", "mdab0_sx378"]
    assert data["test"].text["mdab0_sx288"] == "She had your sx288 suit in greasy wash water."
    # the SPHERE audio reads as the samples that were written
    path = data["test"].audio_of("mdab0_sx288")[0]
    assert path.endswith("TEST/DR1/MDAB0/SX288.WAV")
    x = load_audio(path, 16000)
    assert len(x) == lengths["mdab0_sx288"] and np.allclose(x, sf.read(path, dtype="float32")[0])
    # phones.ctm: h# -> sil, ix -> ih, q dropped, times from 16 kHz samples
    ctm = read_ctm(tmp_path / "data" / "test" / "phones.ctm")
    n = lengths["mdab0_sx288"]
    got = [(iv.phone, round(iv.start * 1000), round(iv.end * 1000)) for iv in ctm["mdab0_sx288"]]
    last = round((n - 1600) / 16)  # ms
    assert got == [("sil", 0, 100), ("sh", 100, 200), ("ih", 250, last), ("sil", last, round(n / 16))]
    assert set(read_ctm(tmp_path / "data" / "train" / "phones.ctm")) == set(data["train"].utterances)


def test_lower_case_copy_61_phones_complete_test_set_with_sa(tmp_path):
    _fake_timit(tmp_path / "timit", lower=True)
    rep = prepare_timit(tmp_path / "timit", tmp_path / "data", phones="61", test_set="complete", include_sa=True,
                        dev_every=4)
    assert rep.counts == {"train": 6, "dev": 2, "test": 8} and rep.skipped == {}
    test = read_data_dir(tmp_path / "data" / "test", check_audio=True)
    assert test.speakers == ["faks0", "mdab0"]
    assert test.audio_of("faks0_sa1")[0].endswith("test/dr1/faks0/sa1.wav")  # the SPHERE file, not sa1.wav.wav
    ctm = read_ctm(tmp_path / "data" / "test" / "phones.ctm")
    assert [iv.phone for iv in ctm["faks0_sa1"]] == ["h#", "sh", "q", "ix", "h#"]


def test_bad_trees_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "notimit" / "TRAIN").mkdir(parents=True)
    with pytest.raises(UserError, match="not a TIMIT root"):
        prepare_timit(tmp_path / "notimit", tmp_path / "data")
    lengths = _fake_timit(tmp_path / "TIMIT")
    assert lengths
    (tmp_path / "TIMIT" / "TRAIN" / "DR1" / "FCJF0" / "SX288.PHN").unlink()
    rep = prepare_timit(tmp_path / "TIMIT", tmp_path / "data", dev_every=2)
    assert rep.skipped == {"SA sentences": 3, "no .PHN": 1} and rep.counts["train"] + rep.counts["dev"] == 5
    shutil.rmtree(tmp_path / "TIMIT" / "TEST" / "DR1" / "MDAB0")  # no core test speaker left
    assert main(["--timit-root", str(tmp_path / "TIMIT"), "--out-dir", str(tmp_path / "d2"), "--dev-every", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no utterances for the test split" in err, err
    assert not (tmp_path / "d2").exists()  # nothing half-written
    (tmp_path / "TIMIT" / "TEST" / "DR1" / "FAKS0" / "SX288.PHN").write_text("0 10 h#\n10 x sh\n")
    with pytest.raises(UserError, match=r"SX288.PHN:2: expected '<start sample> <end sample> <phone>'"):
        prepare_timit(tmp_path / "TIMIT", tmp_path / "d3", test_set="complete")


def test_recipe_prepares_timit_from_a_relative_root(tmp_path):
    """egs/timit/run.sh stages 0-1 (a relative --timit-root read from the caller's folder), then
    --skip-stages leaving stage 1 out."""
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")
    shutil.copytree(REPO / "egs" / "timit", tmp_path / "egs" / "timit", symlinks=True,
                    ignore=shutil.ignore_patterns("data", "exp"))
    shutil.copytree(REPO / "egs" / "vctk" / "conf", tmp_path / "egs" / "vctk" / "conf")
    _fake_timit(tmp_path / "TIMIT")
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "python": sys.executable}
    res = subprocess.run(["bash", "egs/timit/run.sh", "--stage", "0", "--stop-stage", "1", "--timit-root", "TIMIT",
                          "--data-args", "--dev-every 2"],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert f"--timit-root {tmp_path}/TIMIT" in res.stdout and "Stage 1: validating" in res.stdout
    assert "Config: conf/paper.yaml" not in res.stdout  # stage 2 is not in the range
    for name in ("train", "dev", "test"):
        assert (tmp_path / "egs" / "timit" / "data" / name / "phones.ctm").is_file()
    res = subprocess.run(["bash", "egs/timit/run.sh", "--stage", "1", "--stop-stage", "1", "--skip-stages", "1"],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0 and "Stage 1" not in res.stdout, res.stdout + res.stderr
    assert "Done (stages 1..1, without 1)" in res.stdout
