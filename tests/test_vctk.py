import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from vqspeech.corpus_prep.vctk import prepare_vctk
from vqspeech.kaldi_data_dir import read_data_dir
from vqspeech.errors import UserError


def _fake_vctk(root, layout, speakers=("p225", "p226", "p315"), n=6):
    """A VCTK-shaped tree whose audio is synthesized speech (flite) or a tone without flite."""
    wav_dir = root / ("wav48_silence_trimmed" if layout == "0.92" else "wav48")
    for spk in speakers:
        (wav_dir / spk).mkdir(parents=True)
        if spk != "p315":  # p315 has no transcripts in VCTK
            (root / "txt" / spk).mkdir(parents=True)
        for i in range(1, n + 1):
            utt = f"{spk}_{i:03d}"
            text = f"Please call Stella number {i}."
            tmp = root / "tmp.wav"
            if shutil.which("flite"):
                subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(tmp)], check=True)
                audio, sr = sf.read(tmp)
            else:
                sr = 16000
                audio = 0.1 * np.sin(np.arange(8000) * 0.05)
            if layout == "0.92":
                for mic in ("mic1", "mic2"):
                    sf.write(wav_dir / spk / f"{utt}_{mic}.flac", audio, sr)
            else:
                sf.write(wav_dir / spk / f"{utt}.wav", audio, sr)
            if spk != "p315":
                (root / "txt" / spk / f"{utt}.txt").write_text(text + "\n")
    return root


@pytest.mark.parametrize("layout", ["0.92", "0.80"])
def test_both_layouts(tmp_path, layout):
    root = _fake_vctk(tmp_path / "VCTK", layout)
    rep = prepare_vctk(root, tmp_path / "data", mic="mic2", heldout_speakers=["p226"], test_sentences="1-2",
                       dev_every=2)
    assert rep.layout == layout
    assert rep.skipped_no_text == {"p315": 6}
    test = read_data_dir(rep.splits["test"], check_audio=True)
    train = read_data_dir(rep.splits["train"], check_audio=True)
    dev = read_data_dir(rep.splits["dev"], check_audio=True)
    # p226 is held out: all 6 of its utterances in test, none in train/dev
    assert sorted(u for u in test.utt2spk if u.startswith("p226")) == [f"p226_{i:03d}" for i in range(1, 7)]
    assert train.speakers == ["p225"] and dev.speakers == ["p225"]
    assert sorted(test.utt2spk) == ["p225_001", "p225_002"] + [f"p226_{i:03d}" for i in range(1, 7)]
    assert len(train.utt2spk) + len(dev.utt2spk) == 4 and len(dev.utt2spk) == 2
    if layout == "0.92":
        assert test.wav_scp["p225_001"].endswith("p225_001_mic2.flac")
    assert test.text["p225_001"] == "Please call Stella number 1."


def test_not_vctk(tmp_path):
    with pytest.raises(UserError, match="not a VCTK root"):
        prepare_vctk(tmp_path, tmp_path / "data")
