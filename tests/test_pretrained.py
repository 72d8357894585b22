"""The shipped pretrained model: present, loadable safely, used when no --model is given."""

import json

import numpy as np
import soundfile as sf

from vqspeech.bin.convert_voice import main as convert_main
from vqspeech.checkpoint import load_model
from vqspeech.demo_app import example_files
from vqspeech.pretrained import default_model_path


def test_shipped_model_is_small_and_loads():
    path = default_model_path()
    assert path is not None and path.stat().st_size < 20 * 1024 * 1024
    lm = load_model(path)
    assert {"awb", "kal", "rms", "slt"} <= set(lm.speakers) and lm.hop == 64
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["step"] == lm.step and "command" in card


def test_convert_voice_defaults_to_the_shipped_model(tmp_path, capsys):
    assert convert_main(["--list-speakers"]) == 0
    speakers = capsys.readouterr().out.split()
    src = example_files()[0]
    assert convert_main(["--input", str(src), "--target-speaker", speakers[-1], "--output", str(tmp_path / "o.wav")]) == 0
    y, sr = sf.read(tmp_path / "o.wav")
    assert sr == 16000 and len(y) == sf.info(str(src)).frames and np.abs(y).max() > 0.01
