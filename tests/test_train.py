import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from vqspeech.checkpoint import load_model
from vqspeech.kaldi_data_dir import DataDir, read_data_dir, write_data_dir
from vqspeech.train import train
from vqspeech.training_runtime import learning_rate

from helpers import tiny_config

TESTS = Path(__file__).resolve().parent


def _subset(src, dst, utts):
    dd = read_data_dir(src)
    sub = DataDir(wav_scp={u: dd.wav_scp[u] for u in utts}, utt2spk={u: dd.utt2spk[u] for u in utts},
                  text={u: dd.text[u] for u in utts})
    write_data_dir(dst, sub)
    return dst


def test_learning_rate_schedule():
    cfg = tiny_config(lr=1.0, warmup_steps=10, max_steps=110, lr_schedule="cosine", min_lr_ratio=0.1)
    tc = cfg.train_conf
    assert learning_rate(0, tc) == pytest.approx(0.1)
    assert learning_rate(9, tc) == pytest.approx(1.0)
    assert learning_rate(60, tc) == pytest.approx(0.55)
    assert learning_rate(110, tc) == pytest.approx(0.1)


def test_overfits_one_utterance(tiny_corpus, tmp_path):
    src = tiny_corpus / "data" / "train"
    one = _subset(src, tmp_path / "one", [read_data_dir(src).utterances[0]])
    cfg = tiny_config(max_steps=300, batch_size=4, segment_samples=2048, lr=3e-3, log_every=25,
                      val_every=1000, checkpoint_every=300)
    res = train(cfg, one, None, tmp_path / "exp", progress=False)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(tmp_path / "exp" / "tensorboard"))
    ev.Reload()
    recon = [s.value for s in ev.Scalars("loss/recon")]
    assert recon[0] > 5.0                  # about ln(256) = 5.55 at the start
    assert recon[-1] < recon[0] - 1.5, recon  # falls by a clear margin
    assert res.final["vq/codes_used"] >= 4
    summary = json.loads((tmp_path / "exp" / "train_summary.json").read_text())
    assert summary["step"] == 300 and summary["throughput_audio_seconds_per_second"] > 0


def test_resume_equals_uninterrupted(tiny_corpus, tmp_path):
    data = tiny_corpus / "data" / "train"
    cfg = tiny_config(max_steps=14, checkpoint_every=7, lr_schedule="cosine", warmup_steps=3)
    full = train(cfg, data, None, tmp_path / "a", progress=False).model.state_dict()
    first = train(cfg, data, None, tmp_path / "b", progress=False, until_step=7)
    assert first.step == 7
    resumed = train(cfg, data, None, tmp_path / "b", progress=False)
    assert resumed.step == 14
    part = resumed.model.state_dict()
    assert full.keys() == part.keys()
    for k in full:
        assert torch.equal(full[k], part[k]), k


def test_resuming_with_other_model_settings_is_refused_in_one_line(tiny_corpus, tmp_path):
    import yaml

    from vqspeech.errors import UserError

    data = tiny_corpus / "data" / "train"
    cfg = tiny_config(max_steps=2, checkpoint_every=2, val_every=100, audio_samples=0)
    train(cfg, data, None, tmp_path / "exp", progress=False)
    written = (tmp_path / "exp" / "config.yaml").read_text()
    # a setting that changes no weight's shape would otherwise resume silently: refused, naming it
    other = tiny_config(max_steps=4, checkpoint_every=2, val_every=100, audio_samples=0)
    other.decoder_conf.dilation_cycle = 3
    with pytest.raises(UserError, match=r"other model settings \(decoder_conf.dilation_cycle\).*--init-from"):
        train(other, data, None, tmp_path / "exp", progress=False)
    assert (tmp_path / "exp" / "config.yaml").read_text() == written  # nothing rewritten
    # one that changes shapes (before: load_state_dict's traceback), from the command line
    bigger = cfg.to_dict()
    bigger["encoder_conf"]["channels"] = 24
    (tmp_path / "bigger.yaml").write_text(yaml.safe_dump(bigger))
    res = subprocess.run([sys.executable, "-m", "vqspeech", "train", "--config", str(tmp_path / "bigger.yaml"),
                          "--train-data", str(data), "--exp-dir", str(tmp_path / "exp"), "--no-progress",
                          "--max-steps", "4"], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert "other model settings (encoder_conf.channels)" in res.stderr
    # how long and how fast to train may change: resumes
    assert train(tiny_config(max_steps=4, checkpoint_every=2, val_every=100, audio_samples=0, lr=1e-3), data,
                 None, tmp_path / "exp", progress=False).step == 4


def test_outputs_and_checkpoint_roundtrip(tiny_corpus, tmp_path):
    cfg = tiny_config(max_steps=10, checkpoint_every=5, keep_checkpoints=1)
    exp = tmp_path / "exp"
    train(cfg, tiny_corpus / "data" / "train", tiny_corpus / "data" / "dev", exp, progress=False)
    assert (exp / "config.yaml").is_file() and list((exp / "tensorboard").glob("events.*"))
    assert [p.name for p in (exp / "checkpoints").iterdir()] == ["step_00000010.pt"]
    lm = load_model(exp / "checkpoint.pt")
    assert lm.hop == 16 and lm.sample_rate == 16000 and lm.step == 10
    assert lm.speakers == read_data_dir(tiny_corpus / "data" / "train").speakers
    summary = json.loads((exp / "train_summary.json").read_text())
    assert set(summary["validation"]) >= {"recon_loss", "perplexity", "codes_used"}
    # stage 2 run again: nothing to train, the summary of the real run is kept
    from vqspeech.bin.train import main

    before = (exp / "train_summary.json").read_text()
    cfg_path = exp / "config.yaml"
    assert main(["--config", str(cfg_path), "--train-data", str(tiny_corpus / "data" / "train"),
                 "--exp-dir", str(exp), "--no-progress"]) == 0
    assert (exp / "train_summary.json").read_text() == before


def test_throughput_meter_by_hand(monkeypatch):
    """Overall rate from the start; steady rate from the end of the first window, by a fake clock."""
    import vqspeech.training_log as rt

    clock = iter([100.0, 110.0, 114.0, 122.0, 130.0])
    monkeypatch.setattr(rt.time, "perf_counter", lambda: next(clock))
    meter = rt.ThroughputMeter()                    # t = 100
    meter.add(20.0)
    assert meter.end_window() == pytest.approx(2.0)  # t = 110: 20 s of audio in 10 s, compiles and all
    assert meter.steady is None
    meter.add(8.0)
    meter.add(8.0)
    assert meter.end_window() == pytest.approx(36 / 14)  # t = 114
    assert meter.steady == pytest.approx(16 / 4)
    meter.add(16.0)
    assert meter.end_window() == pytest.approx(52 / 22)  # t = 122
    assert meter.steady == pytest.approx(32 / 12)
    assert meter.wall_seconds() == pytest.approx(30.0)  # t = 130
    assert rt.describe_throughput(2.0, None) == "2.00 s audio/s"
    assert rt.describe_throughput(2.0, 4.0) == "2.00 s audio/s (4.00 after the first log window)"


def test_train_command_set_overrides_the_config_and_reports_steady_throughput(tiny_corpus, tmp_path, capsys):
    """``vqspeech train --set``: the run follows the overrides and the experiment's config.yaml keeps
    them; the summary's steady throughput leaves out the first log window (None with only one)."""
    from vqspeech.bin.train import main
    from vqspeech.config import load_config, save_config

    save_config(tmp_path / "c.yaml", tiny_config(max_steps=20, log_every=5))
    data = str(tiny_corpus / "data" / "train")
    assert main(["--config", str(tmp_path / "c.yaml"), "--train-data", data, "--exp-dir", str(tmp_path / "a"),
                 "--no-progress", "--set", "train_conf.max_steps=6", "--set", "train_conf.log_every=3",
                 "--set", "train_conf.batch_size=3", "--set", "decoder_conf.layers=3"]) == 0
    kept = load_config(tmp_path / "a" / "config.yaml")
    assert (kept.train_conf.max_steps, kept.train_conf.log_every, kept.train_conf.batch_size,
            kept.decoder_conf.layers) == (6, 3, 3, 3)
    assert load_model(tmp_path / "a" / "checkpoint.pt").step == 6
    summary = json.loads((tmp_path / "a" / "train_summary.json").read_text())
    assert summary["step"] == 6 and summary["steady_throughput_audio_seconds_per_second"] > 0
    assert "after the first log window" in capsys.readouterr().out
    one = train(tiny_config(max_steps=4, log_every=4), data, None, tmp_path / "b", progress=False)
    assert one.throughput > 0 and one.steady_throughput is None
    assert main(["--config", str(tmp_path / "c.yaml"), "--train-data", data, "--exp-dir", str(tmp_path / "c"),
                 "--no-progress", "--set", "train_conf.batchsize=3"]) == 2
    assert "unknown key batchsize" in capsys.readouterr().err


def test_cuda_step_options_are_applied_by_one_function():
    """``apply_cuda_options`` (what ``vqspeech train`` on CUDA and ``benchmarks/training.py`` both
    call) sets each ``train_conf`` option on the model, lazily compiles what is asked, keeps the
    state dict's names, and leaves a spectral decoder's WaveNet options alone."""
    from vqspeech.config import config_from_dict
    from vqspeech.models import VQVAE, build_model
    from vqspeech.training_runtime import apply_cuda_options

    plain = VQVAE(tiny_config(), num_speakers=3)
    apply_cuda_options(plain)
    assert plain.encoder._compiled_call_impl is None and plain.decoder._compiled_call_impl is None
    assert not plain.decoder.autocast_stream and plain.decoder.gate_kernel == "torch"
    assert not torch.backends.cudnn.benchmark
    every = VQVAE(tiny_config(), num_speakers=3)
    names = list(every.state_dict())
    try:
        apply_cuda_options(every, compile_decoder=True, compile_encoder=True, compile_loss=True,
                           amp_residual_stream=True, cudnn_benchmark=True)
        assert torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.benchmark = False
    assert every.encoder._compiled_call_impl is not None and every.decoder._compiled_call_impl is not None
    assert every.decoder.autocast_stream and every.decoder._cross_entropy is not plain.decoder._cross_entropy
    assert list(every.state_dict()) == names
    spectral_cfg = {**tiny_config().to_dict(), "decoder": "spectral",
                    "decoder_conf": {"n_fft": 256, "n_mels": 20, "frame_hop": 64, "channels": 16, "layers": 1}}
    spectral = build_model(config_from_dict(spectral_cfg), 2)
    apply_cuda_options(spectral, compile_encoder=True, compile_decoder=True, compile_loss=True)
    assert spectral.encoder._compiled_call_impl is not None and spectral.decoder._compiled_call_impl is None


def test_ddp_two_gloo_processes_stay_identical(tiny_corpus, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(TESTS.parent))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(TESTS / "ddp_worker.py"), str(tiny_corpus / "data" / "train"), str(tmp_path / "exp"),
           str(tmp_path), "12"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    # The recent-output buffer is rank-local by design (each rank sees its own shard of the data);
    # everything else (weights, codebook, EMA statistics, usage counts) must be identical.
    assert not torch.equal(r0["quantizer.buffer"], r1["quantizer.buffer"])
    for k in r0:
        if k != "quantizer.buffer":
            assert torch.equal(r0[k], r1[k]), k
    assert bool(r0["quantizer.initialised"])  # k-means ran (synchronised) ...
    assert int(r0["quantizer.steps"]) == 12   # ... and restarts at steps 5, 10
    f0 = torch.load(tmp_path / "final0.pt", weights_only=True)
    assert f0["loss/recon"] < 5.6
    # only rank 0 wrote the experiment directory
    assert (tmp_path / "exp" / "checkpoint.pt").is_file()


def test_dead_ddp_worker_ends_the_job(tiny_corpus, tmp_path):
    """Rank 1 dies mid-training: the job exits non-zero in bounded time instead of hanging."""
    import time

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(TESTS.parent), DIE_RANK="1", DIE_AFTER="5")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(TESTS / "ddp_worker.py"), str(tiny_corpus / "data" / "train"), str(tmp_path / "exp"),
           str(tmp_path), "100000"]
    t0 = time.time()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert res.returncode != 0
    assert time.time() - t0 < 200
    assert "exitcode  : 17" in res.stderr or "ChildFailedError" in res.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_training_steps_never_synchronise_with_the_host():
    """The whole bf16 training step of a WaveNet VQ-VAE with an EMA codebook (channels-last, as
    ``vqspeech train`` runs on CUDA), after k-means and between restarts, queues its kernels without
    once waiting for the GPU: CUDA's sync debug mode turns any synchronising call into an error."""
    from vqspeech.train import _build, _optimise

    cfg = tiny_config()
    device = torch.device("cuda")
    model, params, opt = _build(cfg, 3, device, cfg.train_conf)
    wav = (torch.rand(2, 4096, device=device) * 2 - 1) * 0.5
    spk = torch.tensor([0, 2], device=device)
    for _ in range(2):  # k-means runs at the second step (it may read back)
        _optimise(model, opt, None, params, wav, spk, torch.bfloat16, device, 1.0)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _ in range(2):  # steps 3 and 4: no restart is due (restart_every 5)
                out, grad_norm = _optimise(model, opt, None, params, wav, spk, torch.bfloat16, device, 1.0)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sorted({f"{w.filename}:{w.lineno}" for w in caught if "called a synchronizing" in str(w.message)})
    assert not syncs, syncs
    assert torch.isfinite(out["loss"]).item() and grad_norm.item() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("kernel", ["triton", "triton-linear"])
def test_cuda_training_with_a_triton_gate_kernel_matches_the_torch_gate(kernel):
    """``train_conf.gate_kernel``: a bf16 CUDA training run with a Triton kernel starts from the loss
    the torch gate gives (within bf16 rounding) and learns the batch as fast."""
    pytest.importorskip("triton")
    from vqspeech.train import _build, _optimise

    device = torch.device("cuda")
    wav = (torch.rand(2, 4096, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device) * 0.5
    spk = torch.tensor([0, 2], device=device)
    losses = {}
    for name in ("torch", kernel):
        cfg = tiny_config(gate_kernel=name)
        model, params, opt = _build(cfg, 3, device, cfg.train_conf)
        assert model.decoder.gate_kernel == name
        losses[name] = [_optimise(model, opt, None, params, wav, spk, torch.bfloat16, device, 1.0)[0]["recon_loss"].item()
                        for _ in range(15)]
    ref, got = losses["torch"], losses[kernel]
    assert got[0] == pytest.approx(ref[0], rel=1e-2)
    assert got[-1] < 0.9 * got[0] and got[-1] < 1.1 * ref[-1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_training_with_every_step_option_learns_like_the_default():
    """Every CUDA step option of ``train_conf`` at once (the convolution-gate kernel, the decoder,
    encoder and loss compiled, the bf16 residual stream, cuDNN's timing), as ``vqspeech train``
    builds it: the loss starts where the default step's does (within bf16 rounding) and falls as far."""
    pytest.importorskip("triton")
    from vqspeech.train import _build, _optimise

    device = torch.device("cuda")
    wav = (torch.rand(2, 4096, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device) * 0.5
    spk = torch.tensor([0, 2], device=device)
    every = {"gate_kernel": "triton-linear", "compile": True, "compile_encoder": True, "compile_loss": True,
             "amp_residual_stream": True, "cudnn_benchmark": True}
    losses = {}
    for name, options in (("default", {}), ("every", every)):
        cfg = tiny_config(amp="bf16", **options)
        model, params, opt = _build(cfg, 3, device, cfg.train_conf)
        losses[name] = [_optimise(model, opt, None, params, wav, spk, torch.bfloat16, device, 1.0)[0]["recon_loss"].item()
                        for _ in range(15)]
    torch.backends.cudnn.benchmark = False
    ref, got = losses["default"], losses["every"]
    assert got[0] == pytest.approx(ref[0], rel=1e-2)
    assert got[-1] < 0.9 * got[0] and got[-1] < 1.1 * ref[-1]


def test_an_unknown_gate_kernel_is_a_config_error():
    from vqspeech.config import ConfigError

    with pytest.raises(ConfigError, match="train_conf.gate_kernel: must be torch, triton or triton-linear, got 'cuda'"):
        tiny_config(gate_kernel="cuda")
