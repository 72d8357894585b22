"""The kernel-2 convolution's product and the gate in one Triton kernel (vqspeech.models.linear_gate)
against the torch form (F.linear, then the frame-rate conditioning and the gate), run by Triton's
interpreter on the CPU (TRITON_INTERPRET=1, set by conftest.py without CUDA) and on a GPU when there is one."""

import pytest
import torch
import torch.nn.functional as F

from helpers import triton_device
from vqspeech.models.wavenet import add_frame_rate_last

pytest.importorskip("triton", reason="triton is not installed (pip install -e .[gpu])")


def torch_form(x, w, bias, cond, hop):
    a, b = add_frame_rate_last(F.linear(x, w, bias), cond, hop).chunk(2, dim=2)
    return torch.tanh(a) * torch.sigmoid(b)


@pytest.mark.parametrize("T,hop,K,G", [(48, 12, 16, 16), (45, 12, 16, 24), (100, 4, 24, 16), (40, 8, 16, 80)],
                         ids=["whole-frames", "ragged", "frame-groups", "channel-blocks"])
def test_values_and_all_four_gradients_equal_the_torch_form(T, hop, K, G):
    """z and the gradients of x, w, bias and the per-frame conditioning equal autograd's through the
    torch form, in float32: a last frame partly past T, G and K not powers of two (masked tiles),
    25 frames over programs of 8 (the last program's frames partly past F), and 80 gate channels
    in two blocks of 64 (the second partly masked)."""
    from vqspeech.models.linear_gate import linear_gate

    dev = triton_device()
    g = torch.Generator().manual_seed(0)
    frames = -(-T // hop)
    x = (0.5 * torch.randn(2, T, K, generator=g)).to(dev).requires_grad_()
    w = (torch.randn(2 * G, K, generator=g) / K ** 0.5).to(dev).requires_grad_()
    bias = torch.randn(2 * G, generator=g).to(dev).requires_grad_()
    cond = torch.randn(2, frames, 2 * G, generator=g).to(dev).requires_grad_()
    weights = torch.randn(2, T, G, generator=g).to(dev)  # a loss that weights every output differently
    leaves = (x, w, bias, cond)
    z = linear_gate(x, w, bias, cond, hop)
    (z * weights).sum().backward()
    got = [t.grad.clone() for t in leaves]
    for t in leaves:
        t.grad = None
    ref = torch_form(x, w, bias, cond, hop)
    (ref * weights).sum().backward()
    assert z.shape == (2, T, G) and z.dtype == torch.float32
    torch.testing.assert_close(z, ref, rtol=1e-5, atol=1e-5)
    for name, a, t in zip(("x", "w", "bias", "cond"), got, leaves):
        torch.testing.assert_close(a, t.grad, rtol=1e-4, atol=1e-4, msg=name)
        assert t.grad.abs().max() > 0.1, name  # not trivially small


def test_bfloat16_inputs_give_bfloat16_outputs_within_its_rounding():
    """Under autocast the caller hands bf16 inputs, as F.linear would get: z is bf16 and within bf16
    rounding of the float32 form of the same rounded inputs."""
    from vqspeech.models.linear_gate import linear_gate

    dev = triton_device()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 64, 32, generator=g).bfloat16().to(dev)
    w = (torch.randn(32, 32, generator=g) / 6).bfloat16().float().to(dev)
    bias, cond = torch.randn(32, generator=g).to(dev), torch.randn(1, 4, 32, generator=g).bfloat16().to(dev)
    z = linear_gate(x, w, bias, cond, 16)
    assert z.dtype == torch.bfloat16
    ref = torch_form(x.float(), w, bias, cond.float(), 16)
    assert (z.float() - ref).abs().max().item() < 1e-2


def test_mismatched_shapes_are_refused():
    from vqspeech.models.linear_gate import linear_gate

    x = torch.zeros(1, 40, 8)
    with pytest.raises(ValueError, match="3 frames of 12 samples do not cover 40 samples"):
        linear_gate(x, torch.zeros(16, 8), torch.zeros(16), torch.zeros(1, 3, 16), 12)
    with pytest.raises(ValueError, match=r"weights \(16, 6\) do not fit inputs of 8 channels"):
        linear_gate(x, torch.zeros(16, 6), torch.zeros(16), torch.zeros(1, 4, 16), 12)
    with pytest.raises(ValueError, match=r"conditioning \(1, 4, 12\) does not fit 1 sequences of 16"):
        linear_gate(x, torch.zeros(16, 8), torch.zeros(16), torch.zeros(1, 4, 12), 12)


def test_the_fused_kernel_keeps_the_gate_outputs_out_of_the_saved_activations():
    """benchmarks/training.py --saved-memory: the torch gate keeps tanh(a) and sigmoid(b) (B, T, G)
    each for its backward; the fused kernel keeps the frame-rate conditioning (B, F, 2G) instead,
    and everything else is the same.  Counted by hand for a tiny float32 model."""
    import sys
    from pathlib import Path

    from helpers import tiny_config

    dev = triton_device()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import training as training_benchmark

    cfg = tiny_config()
    B, T = 2, 512
    d = cfg.decoder_conf
    frames = T // cfg.sample_multiple
    saved = {k: training_benchmark.saved_activation_bytes(cfg, dev, B, T, k, None)
             for k in ("torch", "triton-linear")}
    per_layer = 4 * (2 * B * T * d.gate_channels - B * frames * 2 * d.gate_channels)
    assert saved["torch"] - saved["triton-linear"] == d.layers * per_layer
    assert saved["triton-linear"] > 0
