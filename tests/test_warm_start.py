"""Warm start (train_conf.init_from / train --init-from): weights loaded whole, speaker rows matched
by name, another architecture refused, resuming unaffected, and training that goes on from where
the checkpoint stopped."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from helpers import tiny_config  # noqa: E402

from vqspeech.checkpoint import load_checkpoint  # noqa: E402
from vqspeech.config import config_from_dict  # noqa: E402
from vqspeech.errors import UserError  # noqa: E402
from vqspeech.models import build_model  # noqa: E402
from vqspeech.warm_start import speaker_indexed, warm_start  # noqa: E402


def _short(**over):
    return tiny_config(max_steps=10, batch_size=4, segment_samples=2048, lr=3e-4, log_every=5, val_every=1000,
                       checkpoint_every=10, audio_samples=0, **over)


def test_warm_start_loads_every_tensor_and_matches_speakers_by_name(trained_tiny):
    ckpt = load_checkpoint(trained_tiny / "checkpoint.pt")
    theirs = ckpt["speakers"]
    cfg = _short()
    # the same speakers: every tensor is the checkpoint's, the codebook counts as k-means initialised
    torch.manual_seed(5)
    model = build_model(cfg, len(theirs))
    done = warm_start(model, cfg, theirs, trained_tiny / "checkpoint.pt")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, ckpt["model"][name]), name
    assert done.loaded == len(ckpt["model"]) and not done.fresh and not done.dropped and not done.new_speakers
    assert bool(model.quantizer.initialised) and model.quantizer._host_initialised
    # reordered speakers and one the checkpoint never heard: rows follow the names
    speakers = [theirs[-1], "newcomer", theirs[0]]
    torch.manual_seed(6)
    model = build_model(cfg, 3)
    fresh_row = model.speakers.weight[1].clone()
    done = warm_start(model, cfg, speakers, trained_tiny / "checkpoint.pt")
    table = ckpt["model"]["speakers.weight"]
    assert torch.equal(model.speakers.weight[0], table[len(theirs) - 1])
    assert torch.equal(model.speakers.weight[2], table[0])
    assert torch.equal(model.speakers.weight[1], fresh_row)
    assert done.by_speaker == ["speakers.weight"] and done.new_speakers == ["newcomer"]
    assert "speaker rows of" in done.describe("x.pt") and "(new: newcomer)" in done.describe("x.pt")


def test_speaker_indexed_tensors_include_the_adversary():
    cfg = tiny_config().to_dict()
    cfg["encoder_conf"]["speaker_adversary_weight"] = 0.5
    found = speaker_indexed(config_from_dict(cfg), 3)
    adversary = {k for k in found if k.startswith("adversary.")}
    assert "speakers.weight" in found and len(adversary) == 2  # its output layer's weight and bias
    assert speaker_indexed(tiny_config(), 3) == {"speakers.weight"}


def test_warm_start_refuses_another_architecture_or_rate(trained_tiny, tmp_path):
    theirs = load_checkpoint(trained_tiny / "checkpoint.pt")["speakers"]
    wide = tiny_config().to_dict()
    wide["decoder_conf"]["residual_channels"] = 24
    cfg = config_from_dict(wide)
    with pytest.raises(UserError, match=r"--init-from .*checkpoint.pt: decoder\.\S+ is \(.*\) there, .* "
                                        r"in this config's model \(a different architecture\)"):
        warm_start(build_model(cfg, len(theirs)), cfg, theirs, trained_tiny / "checkpoint.pt")
    slow = tiny_config().to_dict()
    slow["sample_rate"] = 8000
    cfg = config_from_dict(slow)
    with pytest.raises(UserError, match="runs at 16000 Hz, this config at 8000 Hz"):
        warm_start(build_model(cfg, len(theirs)), cfg, theirs, trained_tiny / "checkpoint.pt")
    with pytest.raises(UserError, match=r"--init-from .*none\.pt: checkpoint not found"):
        warm_start(build_model(_short(), 2), _short(), theirs[:2], tmp_path / "none.pt")


def test_fine_tuning_goes_on_from_the_checkpoint_and_resuming_ignores_init_from(trained_tiny, tiny_corpus, tmp_path,
                                                                                capsys):
    from vqspeech.bin.train import main as train_main
    from vqspeech.train import train

    data = tiny_corpus / "data" / "train"
    scratch = train(_short(), data, None, tmp_path / "scratch", progress=False)
    tuned = train(_short(init_from=str(trained_tiny / "checkpoint.pt")), data, None, tmp_path / "tuned",
                  progress=False)
    # after 10 steps the fine-tuned model still has the 300-step model's reconstruction, far below scratch's
    assert tuned.final["loss/recon"] < 0.8 * scratch.final["loss/recon"], (tuned.final, scratch.final)
    # resuming the fine-tuned run (here to step 20) reads its own checkpoint, not init_from (now a missing file)
    args = ["--config", str(tmp_path / "tuned" / "config.yaml"), "--train-data", str(data),
            "--exp-dir", str(tmp_path / "tuned"), "--max-steps", "20", "--no-progress",
            "--init-from", str(tmp_path / "gone.pt")]
    assert train_main(args) == 0
    assert "step 20:" in capsys.readouterr().out
    # a fresh run with that missing file: one line naming it, exit 2
    args[5] = str(tmp_path / "fresh")
    assert train_main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--init-from" in err and "gone.pt: checkpoint not found" in err
