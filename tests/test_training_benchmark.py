"""benchmarks/training.py: the breakdown of a training step (``--parts``; each part is timed alone,
and the encoder's part reaches the encoder's weights and nothing else), the rows gpu_check.sh names,
and the configs it refuses."""

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import training as training_benchmark  # noqa: E402

from vqspeech.config import load_config  # noqa: E402
from vqspeech.models import build_model  # noqa: E402


def test_encoder_part_reaches_only_the_encoder():
    cfg = load_config(ROOT / "egs/mini/conf/gpu.yaml")
    torch.manual_seed(0)
    model = build_model(cfg, num_speakers=2)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    wav = 0.1 * torch.randn(2, 1024)
    parts = training_benchmark.time_parts(model, opt, params, wav, None, torch.device("cpu"), 1, cfg.decoder_conf)
    assert set(parts) == {"encoder forward + backward", "cross-entropy forward + backward", "clip + Adam"}
    assert all(v > 0 for v in parts.values())
    named = dict(model.named_parameters())
    encoder = {n for n in named if n.startswith("encoder.")}
    assert encoder
    # the last thing run was the update on the encoder pass's gradients (the loss part's logits
    # are its own leaf): only the encoder has gradients, and only its weights moved
    for n, p in named.items():
        assert (p.grad is not None) == (n in encoder), n
        assert (not torch.equal(p, before[n])) == (n in encoder), n


def test_parts_are_printed_and_written(tmp_path, capsys):
    out = tmp_path / "train.json"
    rc = training_benchmark.main(["--config", str(ROOT / "egs/mini/conf/gpu.yaml"), "--device", "cpu",
                                  "--batch", "2", "--segment", "1024", "--steps", "1", "--warmup", "1",
                                  "--variants", "channels-last", "--parts", "--json", str(out)])
    assert rc == 0
    row = json.loads(out.read_text())["rows"][0]
    parts = row["parts_ms"]
    assert parts["whole step"] > parts["encoder forward + backward"] > 0
    assert abs(parts["whole step"] - 1e3 / row["steps_per_s"]) < 1e-6
    printed = capsys.readouterr().out
    assert "encoder forward + backward:" in printed and "the rest (quantizer, decoder):" in printed
    assert 0 < parts["cross-entropy forward + backward"] < parts["whole step"]


def test_encoder_multiply_adds_by_hand():
    """The paper-style encoder of gpu.yaml: 6 layers of kernel 4, stride 2, 256 channels, 64 latents."""
    e = load_config(ROOT / "egs/mini/conf/gpu.yaml").encoder_conf
    # layer 1: 1 x 256 x 4 per 2 samples; layers 2-6: 256 x 256 x 4 per 4, 8, 16, 32, 64 samples; 256 x 64 per 64
    by_hand = 256 * 4 / 2 + sum(256 * 256 * 4 / 2 ** i for i in range(2, 7)) + 256 * 64 / 64
    assert training_benchmark.encoder_macs_per_sample(e) == by_hand == 127_744


def test_gpu_check_names_only_rows_the_benchmark_has():
    """gpu_check.sh's step 3 picks training rows by name; a misspelt one would cost a GPU run."""
    import re

    script = (ROOT / "benchmarks/gpu_check.sh").read_text()
    named = [n.strip() for part in re.findall(r'rows\+?="([^"]+)"', script) for n in part.split(";") if n.strip()]
    assert "+ every candidate" in named and len(named) >= 5
    cuda_rows = training_benchmark.variant_table("cuda")
    assert not [n for n in named if n not in cuda_rows]
    # the combined row is the five candidates together
    every = cuda_rows["+ every candidate"]
    for single in ("+ Triton convolution-gate kernel", "+ cuDNN autotuning", "+ encoder compiled", "+ loss compiled",
                   "+ bf16 residual stream"):
        assert cuda_rows[single].items() <= every.items(), single
    alone = cuda_rows["+ every candidate, the gate kernel alone"]
    assert alone == {**every, "gate_kernel": "triton"} == {**every, **cuda_rows["+ Triton gate kernels"]}
    assert cuda_rows["+ every candidate, batch x2"] == {**every, "batch_factor": 2}


def test_a_spectral_config_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        training_benchmark.main(["--config", str(ROOT / "egs/mini/conf/default.yaml"), "--device", "cpu"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "default.yaml: a spectral decoder; this benchmark times WaveNet training" in err
