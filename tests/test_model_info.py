"""``vqspeech model-info`` (vqspeech.checkpoint_info): what a checkpoint is and holds, for the three kinds
the toolkit writes, checked against the loaded models and figures worked out by hand."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import tiny_config  # noqa: E402

from vqspeech.checkpoint import load_model, store_measured_history  # noqa: E402
from vqspeech.checkpoint_info import describe_checkpoint, format_description  # noqa: E402
from vqspeech.errors import CheckpointError  # noqa: E402
from vqspeech.pretrained import default_model_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _cli(*args):
    res = subprocess.run([sys.executable, "-m", "vqspeech", "model-info", *args], capture_output=True, text=True)
    return res.returncode, res.stdout, res.stderr.strip()


@pytest.fixture(scope="module")
def tiny_wavenet_exp(tiny_corpus, tmp_path_factory):
    """A 6-step tiny WaveNet VQ-VAE: exp dir with checkpoint.pt and train_summary.json."""
    from vqspeech.train import train

    exp = tmp_path_factory.mktemp("info_exp")
    cfg = tiny_config(max_steps=6, batch_size=2, segment_samples=1024, val_every=6, checkpoint_every=6,
                      log_every=3, audio_samples=0)
    train(cfg, tiny_corpus / "data" / "train", None, exp, progress=False)
    return exp


def test_the_shipped_model_is_described_as_loaded():
    path = default_model_path()
    if path is None:
        pytest.skip("no shipped model in this install")
    info = describe_checkpoint(path)
    lm = load_model(path)
    assert info["kind"] == "vqvae" and info["step"] == lm.step == 4000
    assert info["speakers"] == lm.speakers and info["hop"] == lm.hop == 64
    # 16 kHz / 64 samples = 250 codes/s; 64 codes = 6 bits each: at most 1,500 bit/s
    assert info["codes_per_second"] == 250 and info["num_codes"] == 64 and info["max_bits_per_second"] == 1500
    assert info["decoder"]["type"] == "spectral" and info["decoder"]["frame_hop"] == 256
    assert info["parameters"] == {name: _count(child) for name, child in lm.model.named_children()}
    assert sum(info["parameters"].values()) == _count(lm.model)
    # the adversary and the critic only train: the rest generates
    assert info["parameters_for_inference"] == _count(lm.model) - _count(lm.model.adversary) - _count(lm.model.critic)
    card = json.loads(path.with_suffix(".json").read_text())
    assert info["card"]["name"] == card["name"]
    assert info["summary"] is None  # no train_summary.json ships beside it
    text = format_description(info)
    assert "250 codes/s" in text and "at most 1,500 bit/s" in text and f"card: {card['name']}" in text
    assert "speakers (5): awb, kal, ked, rms, slt" in text and "critic 93,249 (training only)" in text
    assert f"parameters: {_count(lm.model):,}" in text


def test_a_wavenet_model_its_field_history_and_summary(tiny_wavenet_exp, tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(tiny_wavenet_exp, exp)
    info = describe_checkpoint(exp / "checkpoint.pt")
    # tiny_config: strides 2,2,2,2 = hop 16 (1,000 codes/s at 16 kHz), 16 codes = 4 bits each
    assert info["hop"] == 16 and info["codes_per_second"] == 1000 and info["max_bits_per_second"] == 4000
    d = info["decoder"]
    # 6 layers, dilations 1..32: 1 + 63 samples = 4 ms at 16 kHz
    assert d["type"] == "wavenet" and d["receptive_field_samples"] == 64 and d["receptive_field_ms"] == 4.0
    assert d["measured_history_samples"] is None
    summary = json.loads((exp / "train_summary.json").read_text())
    assert info["summary"] == summary and info["step"] == 6 == info["training"]["max_steps"]
    assert info["parameters_for_inference"] == sum(info["parameters"].values())  # no adversary, no critic
    store_measured_history(exp / "checkpoint.pt", {"samples": 24, "tolerance_bits": 0.001, "rows": []})
    again = describe_checkpoint(exp / "checkpoint.pt")
    assert again["decoder"]["measured_history_samples"] == 24
    assert "receptive field 64 samples (4.0 ms); folded warm-up 24 samples (measured)" in format_description(again)
    # a summary of another step (a later run's) does not describe this file
    summary["step"] = 7
    (exp / "train_summary.json").write_text(json.dumps(summary))
    assert describe_checkpoint(exp / "checkpoint.pt")["summary"] is None


def test_a_vocoder_and_a_prior(tiny_corpus, tmp_path):
    from vqspeech.prior.config import prior_config_from_dict
    from vqspeech.prior.data import CodeCorpus
    from vqspeech.prior.train import PriorSource, train_prior
    from vqspeech.wavenet_vocoder import load_vocoder, vocoder_config_from_dict
    from vqspeech.wavenet_vocoder.train import train_vocoder

    vcfg = vocoder_config_from_dict({
        "features": {"n_mels": 20, "n_fft": 256, "frame_hop": 64},
        "decoder_conf": {"layers": 4, "dilation_cycle": 2, "residual_channels": 8, "gate_channels": 8,
                         "skip_channels": 8, "speaker_dim": 4, "cond_channels": 8},
        "train_conf": {"batch_size": 2, "segment_samples": 512, "max_steps": 3, "log_every": 1, "val_every": 3,
                       "checkpoint_every": 3, "audio_samples": 0}})
    train_vocoder(vcfg, tiny_corpus / "data" / "train", None, tmp_path / "voc", progress=False)
    info = describe_checkpoint(tmp_path / "voc" / "vocoder.pt")
    lv = load_vocoder(tmp_path / "voc" / "vocoder.pt")
    assert info["kind"] == "wavenet-vocoder" and info["step"] == 3 and info["hop"] == 64
    assert info["frames_per_second"] == 250  # 16 kHz / 64
    assert info["decoder"]["receptive_field_samples"] == 1 + (1 + 2) * 2  # dilations 1, 2, 1, 2
    assert sum(info["parameters"].values()) == info["parameters_for_inference"] == _count(lv.model)
    assert info["summary"]["step"] == 3
    assert "frames: 20 mel bands (n_fft 256, frame hop 64) at 16000 Hz, 250 frames/s" in format_description(info)

    codes = {f"s{i % 2}_{i}": [i % 4, (i + 1) % 4] * 20 for i in range(8)}
    corpus = CodeCorpus.from_codes(codes, {u: u.split("_")[0] for u in codes}, ["s0", "s1"], 4, "train")
    pcfg = prior_config_from_dict({"model": {"layers": 1, "dim": 16, "heads": 2, "ffn": 32, "context": 50},
                                   "train_conf": {"batch_size": 4, "max_steps": 2, "log_every": 1, "val_every": 2,
                                                  "checkpoint_every": 2}})
    train_prior(pcfg, PriorSource(num_codes=4, speakers=["s0", "s1"], sample_rate=16000, hop=320), corpus, None,
                tmp_path / "prior", progress=False)
    info = describe_checkpoint(tmp_path / "prior" / "prior.pt")
    # 16 kHz / 320 = 50 codes/s: a context of 50 codes is 1 s
    assert info["kind"] == "prior" and info["num_codes"] == 4 and info["codes_per_second"] == 50
    assert info["model"]["context_seconds"] == 1.0 and info["step"] == 2
    assert "context 50 codes (1.00 s)" in format_description(info)


@pytest.mark.parametrize("conditioning, voices", [
    ("reference", "voices: reference audio (resemblyzer d-vectors)"),
    ("learned", "voices: reference audio (a jointly trained speaker encoder)"),
])
def test_reference_models_say_where_their_voice_comes_from(tmp_path, conditioning, voices):
    from vqspeech.checkpoint import save_checkpoint
    from vqspeech.models import build_model

    cfg = tiny_config()
    cfg.speaker_conditioning = conditioning
    model = build_model(cfg, 3)
    save_checkpoint(tmp_path / "m.pt", {"config": cfg.to_dict(), "speakers": ["a", "b", "c"], "sample_rate": 16000,
                                        "hop": 16, "model": model.state_dict(), "step": 0})
    info = describe_checkpoint(tmp_path / "m.pt")
    assert info["speaker_conditioning"] == conditioning and "speakers" not in info["parameters"]
    assert sum(info["parameters"].values()) == _count(model)
    text = format_description(info)
    assert voices in text and "training speakers (3): a, b, c" in text


def test_the_command_prints_lines_or_json(tiny_wavenet_exp):
    path = tiny_wavenet_exp / "checkpoint.pt"
    code, out, err = _cli("--model", str(path), "--json")
    assert code == 0, err
    assert json.loads(out) == json.loads(json.dumps(describe_checkpoint(path)))
    code, out, err = _cli("--model", str(path))
    assert code == 0, err
    assert out == format_description(describe_checkpoint(path))


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "absent.pt", "checkpoint not found"),
    (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", "not a readable checkpoint"),
])
def test_bad_files_are_one_line_errors(tmp_path, make, message):
    path = make(tmp_path)
    code, out, err = _cli("--model", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 0 and err.startswith("vqspeech model-info: error: ") and message in err, err
    with pytest.raises(CheckpointError, match=message):
        describe_checkpoint(path)


def test_a_pickled_object_is_refused_without_running_it(tmp_path):
    import torch

    class Boom:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "ran",))

    bad = tmp_path / "evil.pt"
    torch.save({"format": "vqspeech", "version": 1, "x": Boom()}, bad)
    code, _, err = _cli("--model", str(bad))
    assert code == 2 and "refused to load" in err and not (tmp_path / "ran").exists(), err
