"""``train_conf.amp``: which dtype each device autocasts to, the parts that stay float32 under
autocast (codebook distances, log-mel targets and features), and bf16 training on a CPU with
native bf16."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from helpers import tiny_config  # noqa: E402

from vqspeech.generation import bf16_cpu_backend  # noqa: E402
from vqspeech.models.quantizer import squared_distances  # noqa: E402
from vqspeech.models.mel import mel_filterbank  # noqa: E402
from vqspeech.models.spectral import log_mel_frames  # noqa: E402
from vqspeech.training_runtime import autocast_dtype  # noqa: E402

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("native", [True, False])
def test_amp_dtype_per_device(monkeypatch, capsys, native):
    monkeypatch.setattr(bf16_cpu_backend, "cpu_has_bf16_dot", lambda: native)
    tc = tiny_config(amp="bf16").train_conf
    assert autocast_dtype(tc, CUDA) == torch.bfloat16
    assert autocast_dtype(tiny_config(amp="fp16").train_conf, CUDA) == torch.float16
    assert autocast_dtype(tiny_config().train_conf, CUDA) is None
    assert autocast_dtype(tc, CPU, say=True) == (torch.bfloat16 if native else None)
    said = capsys.readouterr().err
    assert said == ("" if native else "train_conf.amp bf16: this CPU has no native bf16 (AVX512_BF16); "
                                      "training in float32\n")
    assert autocast_dtype(tiny_config(amp="fp16").train_conf, CPU, say=True) is None
    assert "fp16 autocast is for CUDA; training in float32" in capsys.readouterr().err
    assert autocast_dtype(tiny_config().train_conf, CPU, say=True) is None and not capsys.readouterr().err


def test_distances_and_log_mel_frames_stay_float32_under_autocast():
    """Autocast would run both products in bf16; they are computed exactly as without it."""
    g = torch.Generator().manual_seed(0)
    x, codebook = torch.randn(300, 16, generator=g), torch.randn(64, 16, generator=g)
    wav = 0.3 * torch.randn(2, 4096, generator=g)
    fbank = mel_filterbank(16000, 512, 40)
    plain = squared_distances(x, codebook), log_mel_frames(wav, fbank, 512, 128, 1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = squared_distances(x, codebook), log_mel_frames(wav, fbank, 512, 128, 1e-5)
        rounded = x @ codebook.t()  # what autocast does to a product left to it
    assert rounded.dtype == torch.bfloat16  # (so the check below can fail)
    for a, b in zip(plain, mixed):
        assert b.dtype == torch.float32 and torch.equal(a, b)


@pytest.mark.skipif(not bf16_cpu_backend.cpu_has_bf16_dot(), reason="this CPU has no native bf16")
@pytest.mark.parametrize("decoder", ["wavenet", "spectral"])
def test_bf16_cpu_training_learns_like_float32(decoder):
    """``vqspeech train``'s step under the CPU's bf16 autocast: the first loss within bf16
    rounding of float32's, and 40 steps on one batch end within 10% of float32's."""
    from vqspeech.config import config_from_dict
    from vqspeech.train import _build, _optimise

    cfg = tiny_config(amp="bf16", lr=3e-3)
    if decoder == "spectral":
        cfg = config_from_dict({**cfg.to_dict(), "decoder": "spectral",
                                "decoder_conf": {"n_fft": 256, "n_mels": 20, "frame_hop": 64, "channels": 16,
                                                 "layers": 2}})
    g = torch.Generator().manual_seed(0)
    t = torch.arange(4096) / 16000
    wav = (0.3 * torch.sin(2 * torch.pi * 180 * t) + 0.05 * torch.randn(2, 4096, generator=g)).clamp(-1, 1)
    spk = torch.tensor([0, 2])
    dtype = autocast_dtype(cfg.train_conf, CPU)
    assert dtype == torch.bfloat16
    losses = {}
    for name, amp in (("float32", None), ("bf16", dtype)):
        model, params, opt = _build(cfg, 3, CPU, cfg.train_conf)
        losses[name] = [_optimise(model, opt, None, params, wav, spk, amp, CPU, 1.0)[0]["recon_loss"].item()
                        for _ in range(40)]
    ref, got = losses["float32"], losses["bf16"]
    assert got[0] == pytest.approx(ref[0], rel=2e-2) and got[0] != ref[0]
    assert got[-1] < 0.8 * got[0] and got[-1] == pytest.approx(ref[-1], rel=0.1)


def _cpu_training_benchmark():
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("cpu_training", root / "benchmarks" / "cpu_training.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_cpu_training_benchmark_times_both_rows_from_the_same_weights(tmp_path, capsys):
    import json

    from vqspeech.config import save_config

    bench = _cpu_training_benchmark()
    save_config(tmp_path / "tiny.yaml", tiny_config())
    assert bench.main(["--config", str(tmp_path / "tiny.yaml"), "--rounds", "1", "--steps", "2",
                       "--json", str(tmp_path / "out.json")]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in table] == ["row", "float32", "bf16 autocast"]
    rows = json.loads((tmp_path / "out.json").read_text())["rows"]
    assert set(rows) == {"float32", "bf16 autocast"} and all(r["ms_per_step"] > 0 for r in rows.values())
    # both rows train the same model on the same batch: their losses differ by rounding only
    assert rows["bf16 autocast"]["loss"] == pytest.approx(rows["float32"]["loss"], rel=0.05)


def test_the_cpu_training_benchmark_adds_the_parallel_term_and_the_apart_row(tmp_path, capsys):
    import json

    from test_spectral import tiny_spectral
    from vqspeech.config import config_from_dict, save_config

    cfg = tiny_spectral().to_dict()
    cfg["decoder_conf"]["parallel_weight"] = 3.0
    save_config(tmp_path / "par.yaml", config_from_dict(cfg))
    bench = _cpu_training_benchmark()
    assert bench.main(["--config", str(tmp_path / "par.yaml"), "--rounds", "1", "--steps", "2",
                       "--json", str(tmp_path / "out.json")]) == 0
    out = capsys.readouterr().out
    assert "with the parallel term" in out
    rows = json.loads((tmp_path / "out.json").read_text())["rows"]
    assert list(rows) == ["float32", "bf16 autocast", "bf16 autocast, each decode and critic call apart"]
    # the parallel term is in the loss: weighted 3.0, it adds most of a reconstruction loss again
    cfg["decoder_conf"]["parallel_weight"] = 0.0
    save_config(tmp_path / "plain.yaml", config_from_dict(cfg))
    assert bench.main(["--config", str(tmp_path / "plain.yaml"), "--rounds", "1", "--steps", "2",
                       "--json", str(tmp_path / "plain.json")]) == 0
    plain = json.loads((tmp_path / "plain.json").read_text())["rows"]
    assert list(plain) == ["float32", "bf16 autocast"]
    assert rows["float32"]["loss"] > 1.5 * plain["float32"]["loss"]
    # a critic alone also has calls to batch, so the apart row
    cfg["decoder_conf"]["gan_weight"] = 0.1
    save_config(tmp_path / "gan.yaml", config_from_dict(cfg))
    assert bench.main(["--config", str(tmp_path / "gan.yaml"), "--rounds", "1", "--steps", "2",
                       "--json", str(tmp_path / "gan.json")]) == 0
    gan = json.loads((tmp_path / "gan.json").read_text())["rows"]
    assert list(gan) == list(rows)
    assert gan["bf16 autocast, each decode and critic call apart"]["loss"] == pytest.approx(
        gan["bf16 autocast"]["loss"], rel=0.02)
    # one batch or two calls: the same step to rounding
    assert rows["bf16 autocast, each decode and critic call apart"]["loss"] == pytest.approx(rows["bf16 autocast"]["loss"], rel=0.02)


@pytest.mark.skipif(not bf16_cpu_backend.cpu_has_bf16_dot(), reason="this CPU has no native bf16")
def test_bf16_cpu_training_resumes_exactly(tiny_corpus, tmp_path):
    """The recipe default trains in bf16 on such a CPU: N + N steps still equal 2N steps."""
    from vqspeech.train import train

    data = tiny_corpus / "data" / "train"
    cfg = tiny_config(amp="bf16", max_steps=12, checkpoint_every=6, lr_schedule="cosine", warmup_steps=2)
    full = train(cfg, data, None, tmp_path / "a", progress=False).model.state_dict()
    train(cfg, data, None, tmp_path / "b", progress=False, until_step=6)
    part = train(cfg, data, None, tmp_path / "b", progress=False).model.state_dict()
    plain = train(tiny_config(max_steps=12, checkpoint_every=6, lr_schedule="cosine", warmup_steps=2), data, None,
                  tmp_path / "c", progress=False).model.state_dict()
    assert all(torch.equal(full[k], part[k]) for k in full)
    assert not all(torch.equal(full[k], plain[k]) for k in full)  # bf16 did run: float32 ends elsewhere
