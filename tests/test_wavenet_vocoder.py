"""The WaveNet vocoder: trains on real frames, resumes exactly, is served by the generation
backends like a WaveNet model, and converts a spectral model's frames from the CLI."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from helpers import tiny_config  # noqa: E402

from vqspeech.config import config_from_dict  # noqa: E402
from vqspeech.errors import CheckpointError, ConfigError  # noqa: E402
from vqspeech.generation import SamplingOptions, generate_classes  # noqa: E402
from vqspeech.wavenet_vocoder import (WaveNetVocoder, load_vocoder, vocoder_config_from_dict)  # noqa: E402
from vqspeech.wavenet_vocoder.train import train_vocoder  # noqa: E402

TINY = {"features": {"n_mels": 20, "n_fft": 256, "frame_hop": 64},
        "decoder_conf": {"layers": 4, "dilation_cycle": 4, "residual_channels": 8, "gate_channels": 8,
                         "skip_channels": 8, "speaker_dim": 4, "cond_channels": 8},
        "train_conf": {"batch_size": 4, "segment_samples": 1024, "max_steps": 150, "lr": 1e-2, "warmup_steps": 0,
                       "lr_schedule": "none", "log_every": 25, "val_every": 75, "checkpoint_every": 75,
                       "val_batches": 1, "audio_samples": 2, "audio_sample_seconds": 0.05}}


def tiny_vocoder_config(**train):
    cfg = {k: dict(v) for k, v in TINY.items()}
    cfg["train_conf"].update(train)
    return vocoder_config_from_dict(cfg)


def _sharp(model):
    for p in model.decoder.parameters():
        p.data.mul_(3.0)
    return model.eval()


@pytest.fixture(scope="module")
def trained_vocoder(tiny_corpus, tmp_path_factory):
    exp = tmp_path_factory.mktemp("vocoder")
    res = train_vocoder(tiny_vocoder_config(), tiny_corpus / "data" / "train", tiny_corpus / "data" / "dev", exp,
                        progress=False)
    return exp, res


def test_vocoder_learns_from_real_frames(trained_vocoder, tiny_corpus):
    exp, res = trained_vocoder
    first = load_vocoder(exp / "checkpoints" / "step_00000075.pt")
    assert first.step == 75 and res.step == 150 and (exp / "vocoder.pt").is_file() and (exp / "config.yaml").is_file()
    # mu-law 256 classes: a uniform guess is log(256) = 5.55 nats per sample
    assert res.train_nats < 4.9, res.train_nats
    assert res.dev_nats is not None and res.dev_nats < 4.9, res.dev_nats
    untrained = WaveNetVocoder(tiny_vocoder_config(), len(first.speakers)).eval()
    from vqspeech.wavenet_vocoder.train import validate_vocoder
    from vqspeech.kaldi_data_dir import read_data_dir

    dev = read_data_dir(tiny_corpus / "data" / "dev")
    # at each validation, two dev clips voiced from their real frames went to tensorboard
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(exp / "tensorboard"), size_guidance={"audio": 0})
    events.Reload()
    # the scalars of each log window, the throughput among them (training_log.RunLog)
    assert {"vocoder/train_nats_per_sample", "vocoder/dev_nats_per_sample", "lr",
            "throughput/audio_seconds_per_second"} <= set(events.Tags()["scalars"])
    assert all(e.value > 0 for e in events.Scalars("throughput/audio_seconds_per_second"))
    generated = sorted(tag for tag in events.Tags()["audio"] if tag.endswith("/generated"))
    assert len(generated) == 2 and {tag.split("/")[1] for tag in generated} <= set(dev.utterances)
    clips = events.Audio(generated[0])
    assert [c.step for c in clips] == [75, 150] and all(c.length_frames == 768 for c in clips)  # 0.05 s in frames of 64
    import io

    import soundfile as sf

    voiced = sf.read(io.BytesIO(clips[-1].encoded_audio_string), dtype="float32")[0]
    assert voiced.shape == (768,) and voiced.std() > 1e-3  # sampled audio, not silence
    lv = load_vocoder(exp / "vocoder.pt")
    before = validate_vocoder(untrained, dev, lv.speakers, lv.config, 1024, "cpu")
    after = validate_vocoder(lv.model, dev, lv.speakers, lv.config, 1024, "cpu")
    print(before, after)
    assert after < before - 0.7, (before, after)


def test_training_in_two_chunks_equals_one_run(tiny_corpus, tmp_path):
    data = tiny_corpus / "data" / "train"
    cfg = tiny_vocoder_config(max_steps=20, checkpoint_every=10)
    one = train_vocoder(cfg, data, None, tmp_path / "one", progress=False)
    # the chunks also load their crops in two worker processes (train_conf.num_workers)
    with_workers = tiny_vocoder_config(max_steps=20, checkpoint_every=10, num_workers=2)
    train_vocoder(with_workers, data, None, tmp_path / "two", progress=False, until_step=10)
    two = train_vocoder(with_workers, data, None, tmp_path / "two", progress=False)
    assert two.step == 20
    for (k, a), b in zip(one.model.state_dict().items(), two.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_rerunning_a_finished_vocoder_keeps_its_summary(trained_vocoder, tiny_corpus, capsys):
    from vqspeech.bin.train_vocoder import main

    exp, _ = trained_vocoder
    before = (exp / "vocoder_summary.json").read_text()
    cfg = exp / "config.yaml"
    assert main(["--config", str(cfg), "--train-data", str(tiny_corpus / "data" / "train"), "--exp-dir", str(exp),
                 "--no-progress"]) == 0
    assert "already trained to step 150" in capsys.readouterr().out
    assert (exp / "vocoder_summary.json").read_text() == before


def test_train_vocoder_takes_set_overrides_without_a_config_file(tiny_corpus, tmp_path, capsys):
    import json

    from vqspeech.bin.train_vocoder import main
    from vqspeech.wavenet_vocoder.config import load_vocoder_config

    assert main(["--train-data", str(tiny_corpus / "data" / "train"), "--exp-dir", str(tmp_path), "--no-progress",
                 "--set", "train_conf.max_steps=4", "--set", "train_conf.batch_size=2", "--set", "train_conf.log_every=2",
                 "--set", "train_conf.segment_samples=1024", "--set", "decoder_conf.layers=2"]) == 0
    kept = load_vocoder_config(tmp_path / "config.yaml")
    assert (kept.train_conf.max_steps, kept.train_conf.batch_size, kept.decoder_conf.layers) == (4, 2, 2)
    assert kept.train_conf.lr == 1e-3  # the vocoder's own default under the overrides
    assert load_vocoder(tmp_path / "vocoder.pt").step == 4
    # the throughput, as vqspeech train reports it: 4 steps of 2 x 1,024 samples at 16 kHz took at
    # most the run's wall time; the steady rate counts steps 3-4 only
    s = json.loads((tmp_path / "vocoder_summary.json").read_text())
    assert s["throughput_audio_seconds_per_second"] >= 4 * 2 * 1024 / 16000 / s["wall_seconds"]
    assert s["steady_throughput_audio_seconds_per_second"] > 0
    assert "s audio/s (" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["numba", "naive"])
def test_generation_backends_serve_the_vocoder_like_a_wavenet(method):
    """The cached recursion reproduces the teacher-forced forward (reference backend), and the
    other exact backends draw the reference's samples from frames instead of codes."""
    torch.manual_seed(0)
    voc = _sharp(WaveNetVocoder(tiny_vocoder_config(), 3))
    frames = torch.randn(2, 6, 20) - 4.0
    spk = torch.tensor([0, 2])
    T = 6 * 64
    teacher = torch.randint(0, 256, (2, T))
    _, logits = generate_classes(voc, frames, spk, T, SamplingOptions(), "reference", teacher=teacher,
                                 return_logits=True)
    c, g = voc.code_conditioning(frames, spk)
    with torch.no_grad():
        forward = voc.decoder(voc.decoder.shift_inputs(teacher), c, g, voc.hop)
    assert torch.allclose(logits, forward, atol=1e-4)
    ref = generate_classes(voc, frames, spk, T, SamplingOptions(seed=3), "reference")
    other = generate_classes(voc, frames, spk, T, SamplingOptions(seed=3), method)
    assert torch.equal(ref, other)
    assert len(set(ref[0].tolist())) > 10  # not a constant output


def test_vocoder_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="features.n_fft"):
        vocoder_config_from_dict({"features": {"n_fft": 1000}})
    with pytest.raises(ConfigError, match="unknown key"):
        vocoder_config_from_dict({"decoder_conf": {"layer": 3}})
    assert vocoder_config_from_dict({}).decoder_conf.layers == 10  # the mini WaveNet's size by default
    with pytest.raises(ConfigError, match="train_conf.compile_encoder: a vocoder has no encoder"):
        vocoder_config_from_dict({"train_conf": {"compile_encoder": True}})


def _voiced_crops(batch: int, samples: int, seed: int = 0) -> torch.Tensor:
    """(batch, samples) harmonic tones with noise: audio whose log-mel frames say something."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / 16000
    f0 = 100 + 200 * torch.rand(batch, 1, generator=g)
    wav = sum(torch.sin(2 * torch.pi * k * f0 * t) / k for k in range(1, 6))
    return (0.3 * wav + 0.02 * torch.randn(batch, samples, generator=g)).clamp(-1, 1)


def test_autocast_reads_the_frames_in_float32():
    """Under autocast (``train_conf.amp`` on CUDA; bf16 on the CPU here) the vocoder's log-mel frames
    are computed in float32, exactly as without it and as generation reads them; only the
    network runs in bf16, and its loss stays within bf16 rounding of float32's."""
    torch.manual_seed(0)
    model = WaveNetVocoder(tiny_vocoder_config(), 2)
    wav, spk = _voiced_crops(2, 1024), torch.tensor([0, 1])
    seen = []
    conditioning = model.code_conditioning
    model.code_conditioning = lambda frames, speaker: seen.append(frames) or conditioning(frames, speaker)
    full = model(wav, spk)["loss"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(wav, spk)["loss"]
    assert seen[1].dtype == torch.float32 and torch.equal(seen[0], seen[1])
    assert torch.equal(seen[0], model.log_mel(wav))
    assert mixed.item() == pytest.approx(full.item(), rel=1e-2) and mixed.item() != full.item()


def test_the_cuda_training_form_computes_the_same_loss_and_gradients():
    """``prepare_for_cuda`` (channels-last products, train_conf's step options at their defaults),
    which ``train-vocoder`` applies on CUDA, changes how the vocoder computes, not what: run
    here on the CPU, its loss and gradients equal the convolution form's to float tolerance."""
    from vqspeech.training_runtime import prepare_for_cuda

    wav, spk = _voiced_crops(2, 1024), torch.tensor([0, 1])
    results = []
    for cuda_form in (False, True):
        torch.manual_seed(0)
        model = WaveNetVocoder(tiny_vocoder_config(), 2)
        if cuda_form:
            prepare_for_cuda(model, model.cfg.train_conf)
            assert model.decoder.upsample == "channels-last"
        loss = model(wav, spk)["loss"]
        loss.backward()
        results.append((loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()])))
    (loss0, grad0), (loss1, grad1) = results
    assert loss1 == pytest.approx(loss0, rel=1e-5)
    assert torch.allclose(grad1, grad0, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_vocoder_training_with_bf16_and_every_step_option_learns_like_float32():
    """``train-vocoder`` on CUDA: the VQ-VAE trainer's CUDA form (channels-last, train_conf's step
    options) and bf16 autocast start from float32's loss (within bf16 rounding) and learn as fast."""
    pytest.importorskip("triton")
    from vqspeech.training_runtime import backward_and_step, prepare_for_cuda

    device = torch.device("cuda")
    wav, spk = _voiced_crops(4, 2048).to(device), torch.tensor([0, 1, 0, 1], device=device)
    every = {"amp": "bf16", "gate_kernel": "triton-linear", "compile": True, "compile_loss": True,
             "amp_residual_stream": True, "cudnn_benchmark": True}
    losses = {}
    for name, options in (("float32", {}), ("every", every)):
        cfg = tiny_vocoder_config(**options)
        torch.manual_seed(0)
        model = WaveNetVocoder(cfg, 2).to(device)
        prepare_for_cuda(model, cfg.train_conf)
        params = list(model.parameters())
        opt = torch.optim.Adam(params, lr=1e-2)
        dtype = torch.bfloat16 if options else None
        curve = []
        for _ in range(20):
            with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
                loss = model(wav, spk)["loss"]
            backward_and_step(loss, opt, None, params, 1.0)
            curve.append(loss.item())
        losses[name] = curve
    torch.backends.cudnn.benchmark = False
    ref, got = losses["float32"], losses["every"]
    assert got[0] == pytest.approx(ref[0], rel=1e-2)
    assert got[-1] < 0.9 * got[0] and got[-1] < 1.1 * ref[-1]


@pytest.fixture(scope="module")
def tiny_spectral_model(tiny_corpus, tmp_path_factory):
    from vqspeech.train import train

    cfg = tiny_config(max_steps=10).to_dict()
    cfg["decoder"] = "spectral"
    cfg["decoder_conf"] = {"n_fft": 256, "n_mels": 20, "frame_hop": 64, "channels": 16, "layers": 1,
                           "speaker_dim": 4}
    exp = tmp_path_factory.mktemp("spectral")
    train(config_from_dict(cfg), tiny_corpus / "data" / "train", None, exp, progress=False)
    return exp / "checkpoint.pt"


def test_convert_voice_with_the_wavenet_vocoder(tiny_spectral_model, trained_vocoder, tiny_corpus, tmp_path, capsys):
    import soundfile as sf

    from vqspeech.bin.convert_voice import main

    exp, _ = trained_vocoder
    wav = (tiny_corpus / "data" / "test" / "wav.scp").read_text().splitlines()[0].split()[1]
    args = ["--model", str(tiny_spectral_model), "--input", wav, "--target-speaker", "slt"]
    out = tmp_path / "out.wav"
    assert main(args + ["--output", str(out), "--vocoder-model", str(exp / "vocoder.pt"), "--no-progress"]) == 0
    y, sr = sf.read(out)
    x, _ = sf.read(wav)
    assert sr == 16000 and abs(len(y) - len(x)) < 64 and np.abs(y).max() > 0.01
    assert "WaveNet vocoder" in capsys.readouterr().out
    # the same seed gives the same audio; Griffin-Lim gives other audio
    out2, gl = tmp_path / "again.wav", tmp_path / "gl.wav"
    assert main(args + ["--output", str(out2), "--vocoder", "wavenet", "--vocoder-model", str(exp / "vocoder.pt")]) == 0
    assert np.array_equal(sf.read(out2)[0], y)
    assert main(args + ["--output", str(gl)]) == 0
    assert not np.array_equal(sf.read(gl)[0][: len(y)], y)


def test_vocoder_misuse_is_a_one_line_error(tiny_spectral_model, trained_vocoder, trained_tiny, tiny_corpus,
                                            tmp_path, capsys):
    from vqspeech.bin.convert_voice import main

    exp, _ = trained_vocoder
    wav = (tiny_corpus / "data" / "test" / "wav.scp").read_text().splitlines()[0].split()[1]
    base = ["--input", wav, "--target-speaker", "slt", "--output", str(tmp_path / "o.wav")]
    cases = [
        (["--model", str(tiny_spectral_model), "--vocoder", "wavenet"], "needs --vocoder-model"),
        (["--model", str(tiny_spectral_model), "--vocoder-model", str(tiny_spectral_model)], "not a WaveNet vocoder"),
        (["--model", str(exp / "vocoder.pt")], "a vocoder goes to --vocoder-model"),
        (["--model", str(trained_tiny / "checkpoint.pt"), "--vocoder-model", str(exp / "vocoder.pt")],
         "WaveNet model"),
        (["--model", str(tiny_spectral_model), "--vocoder", "griffin-lim", "--vocoder-model", str(exp / "vocoder.pt")],
         "goes with --vocoder wavenet"),
    ]
    for extra, message in cases:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err, err
    assert not (tmp_path / "o.wav").exists()


def test_train_vocoder_frames_of_refuses_other_frames_before_training(tiny_spectral_model, trained_tiny, tiny_corpus,
                                                                      tmp_path, capsys):
    import yaml

    from vqspeech.bin.train_vocoder import main

    config = tmp_path / "voc.yaml"
    config.write_text(yaml.safe_dump({**TINY, "train_conf": {**TINY["train_conf"], "max_steps": 2}}))
    base = ["--config", str(config), "--train-data", str(tiny_corpus / "data" / "train"), "--no-progress"]
    # the tiny spectral model predicts 20 mel bands of a 256-point FFT every 64 samples
    assert main(base + ["--exp-dir", str(tmp_path / "bad"), "--frames-of", str(tiny_spectral_model),
                        "--set", "features.frame_hop=128"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "(16000, 20, 256, 128) differ from the model's (16000, 20, 256, 64)" in err, err
    assert "train-vocoder --set features.frame_hop=64 makes a vocoder for it" in err
    assert not (tmp_path / "bad").exists()  # refused before anything was written
    assert main(base + ["--exp-dir", str(tmp_path / "w"), "--frames-of", str(trained_tiny / "checkpoint.pt")]) == 2
    assert "reads mel frames; this model predicts samples" in capsys.readouterr().err
    assert main(base + ["--exp-dir", str(tmp_path / "good"), "--frames-of", str(tiny_spectral_model)]) == 0
    assert load_vocoder(tmp_path / "good" / "vocoder.pt").step == 2


def test_vocoder_refuses_frames_of_another_shape(trained_vocoder):
    exp, _ = trained_vocoder
    lv = load_vocoder(exp / "vocoder.pt")
    cfg = config_from_dict({"decoder": "spectral", "decoder_conf": {"n_fft": 1024, "n_mels": 80, "frame_hop": 256}})
    with pytest.raises(ValueError, match="differ from the model"):
        lv.check_frames_of(cfg)
    with pytest.raises(ValueError, match="not 'nobody'"):
        lv.speaker_index("nobody")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_vocoder(exp / "config.yaml")


def test_demo_and_vc_eval_voice_frames_with_the_vocoder(tiny_spectral_model, trained_vocoder, tiny_corpus,
                                                          tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    import json

    from vqspeech import demo_app
    from vqspeech.bin.vc_eval import main as vc_eval

    exp, _ = trained_vocoder
    src = (tiny_corpus / "data" / "test" / "wav.scp").read_text().splitlines()[0].split()[1]
    monkeypatch.setattr(demo_app, "_allowed", lambda path: True)
    conv = demo_app.Converter(str(tiny_spectral_model), str(exp / "vocoder.pt"))
    (sr, pcm), _, info = conv(src, "slt", 1.0, 0, None)
    gl = demo_app.Converter(str(tiny_spectral_model))
    (_, pcm_gl), _, info_gl = gl(src, "slt", 1.0, 0, None)
    assert sr == 16000 and len(pcm) == len(pcm_gl) > 0 and not np.array_equal(pcm, pcm_gl)
    assert "WaveNet vocoder" in info and "Griffin-Lim" in info_gl
    out = tmp_path / "vc"
    assert vc_eval(["--model", str(tiny_spectral_model), "--data-dir", str(tiny_corpus / "data" / "test"),
                    "--centroid-data", str(tiny_corpus / "data" / "train"), "--output-dir", str(out),
                    "--max-sentences", "1", "--max-pairs", "3", "--no-progress",
                    "--vocoder-model", str(exp / "vocoder.pt")]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["vocoder"].endswith("vocoder.pt") and rep["overall"]["converted"]["n"] >= 1
    assert "vocoder" in (out / "report.md").read_text()


def test_measure_history_serves_the_vocoder(trained_vocoder, tiny_corpus, tmp_path, capsys):
    """A vocoder is measured on the log-mel frames of real audio, and the stored history becomes
    its folding warm-up."""
    import shutil

    from vqspeech.bin.measure_history import main as measure_main
    from vqspeech.checkpoint import load_checkpoint
    from vqspeech.conversion import warmup_samples

    path = tmp_path / "vocoder.pt"
    shutil.copy(trained_vocoder[0] / "vocoder.pt", path)
    assert load_vocoder(path).model.decoder.history_samples is None
    assert measure_main(["--model", str(path), "--data-dir", str(tiny_corpus / "data" / "dev"), "--utterances", "3",
                         "--tolerance", "100", "--write"]) == 0
    out = capsys.readouterr().out
    assert "| 16 (receptive field) |" in out and "window of 16 samples" in out
    rec = load_checkpoint(path)["measured_history"]
    assert rec["samples"] == 0 and [r[0] for r in rec["rows"]] == [0, 16] and rec["rows"][0][2] > 0
    voc = load_vocoder(path).model
    assert voc.decoder.history_samples == 0 and warmup_samples(voc.decoder, None) == 0
