"""The hand-written Triton gate (vqspeech.models.gate_kernel) against the torch form, run by Triton's
interpreter on the CPU (TRITON_INTERPRET=1, set by conftest.py without CUDA) and on a GPU when there is one."""

import pytest
import torch

from helpers import triton_device
from vqspeech.models.wavenet import add_frame_rate_last

pytest.importorskip("triton", reason="triton is not installed (pip install -e .[gpu])")


def torch_gate(h, cond, hop):
    a, b = add_frame_rate_last(h, cond, hop).chunk(2, dim=2)
    return torch.tanh(a) * torch.sigmoid(b)


@pytest.mark.parametrize("T,hop,G", [(48, 12, 16), (45, 12, 24), (40, 16, 8)], ids=["whole-frames", "ragged", "small"])
def test_gate_and_its_gradients_equal_the_torch_form(T, hop, G):
    """Forward values and the gradients of h and of the per-frame conditioning (a sum over each
    frame's samples) equal autograd's through the torch form; the last frame may be partly past T
    and G need not be a power of two."""
    from vqspeech.models.gate_kernel import frame_gate

    dev = triton_device()
    g = torch.Generator().manual_seed(0)
    frames = -(-T // hop)
    h = torch.randn(2, T, 2 * G, generator=g, dtype=torch.float64).float().to(dev).requires_grad_()
    cond = torch.randn(2, frames, 2 * G, generator=g).to(dev).requires_grad_()
    w = torch.randn(2, T, G, generator=g).to(dev)  # a loss that weights every output differently
    z = frame_gate(h, cond, hop)
    (z * w).sum().backward()
    gh, gc = h.grad.clone(), cond.grad.clone()
    h.grad = cond.grad = None
    ref = torch_gate(h, cond, hop)
    (ref * w).sum().backward()
    assert z.shape == (2, T, G) and z.dtype == h.dtype
    torch.testing.assert_close(z, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gh, h.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gc, cond.grad, rtol=1e-5, atol=1e-5)
    assert gc.abs().max() > 0.1  # the sums are not trivially small


def test_bfloat16_inputs_give_bfloat16_outputs_within_its_rounding():
    from vqspeech.models.gate_kernel import frame_gate

    dev = triton_device()
    g = torch.Generator().manual_seed(1)
    h = torch.randn(1, 64, 32, generator=g).to(dev)
    cond = torch.randn(1, 4, 32, generator=g).to(dev)
    z = frame_gate(h.bfloat16(), cond.bfloat16(), 16)
    assert z.dtype == torch.bfloat16
    ref = torch_gate(h.bfloat16().float(), cond.bfloat16().float(), 16)
    assert (z.float() - ref).abs().max().item() < 1e-2


def test_too_few_frames_is_refused():
    from vqspeech.models.gate_kernel import frame_gate

    with pytest.raises(ValueError, match="3 frames of 12 samples do not cover 40 samples"):
        frame_gate(torch.zeros(1, 40, 8), torch.zeros(1, 3, 8), 12)


@pytest.mark.parametrize("kernel", ["triton", "triton-linear"])
def test_a_decoder_with_a_triton_kernel_trains_as_the_torch_gate_does(kernel):
    """The channels-last WaveNet with ``gate_kernel`` "triton" (this gate pair) or "triton-linear"
    (the convolution's product and the gate in one kernel, vqspeech.models.linear_gate): the same
    loss and gradients as with the torch gate (in eval mode, so the codebook does not move between
    the two passes)."""
    from helpers import sharp_tiny_wavenet

    dev = triton_device()
    m = sharp_tiny_wavenet(0).to(dev)
    m.decoder.upsample = "channels-last"
    wav = (torch.rand(2, 8 * m.hop, generator=torch.Generator().manual_seed(2)) * 2 - 1).to(dev)
    spk = torch.tensor([0, 1], device=dev)
    results = []
    for name in ("torch", kernel):
        m.zero_grad()
        m.decoder.gate_kernel = name
        torch.manual_seed(3)
        out = m(wav, spk)
        out["loss"].backward()
        layer = m.decoder.layers[1]
        results.append((out["loss"].item(), layer.cond.weight.grad.clone(), layer.conv.weight.grad.clone(),
                        layer.conv.bias.grad.clone(), m.decoder.embed.weight.grad.clone()))
    (l0, *g0), (l1, *g1) = results
    assert l1 == pytest.approx(l0, rel=1e-5)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kernel", ["triton", "triton-linear"])
def test_a_compiled_decoder_keeps_either_kernel_in_one_graph(kernel):
    """torch.compile(fullgraph=True) captures the channels-last decoder with a Triton kernel in one
    graph, the ops inside it, and runs it to the eager loss and gradients.  (Registering the ops
    inside the traced code broke the graph at every layer: the registration now happens when
    ``gate_kernel`` is set.)  Dynamo's graph is run as captured, with the kernels in Triton's
    interpreter on the CPU."""
    from helpers import sharp_tiny_wavenet

    dev = triton_device()
    m = sharp_tiny_wavenet(0).to(dev)
    m.decoder.upsample = "channels-last"
    m.decoder.gate_kernel = kernel
    wav = (torch.rand(2, 8 * m.hop, generator=torch.Generator().manual_seed(2)) * 2 - 1).to(dev)
    spk = torch.tensor([0, 1], device=dev)
    results, graphs = [], []

    def capture(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    for compiled in (False, True):
        torch._dynamo.reset()
        m.zero_grad()
        if compiled:
            m.decoder.compile(backend=capture, fullgraph=True, dynamic=False)
        out = m(wav, spk)
        out["loss"].backward()
        results.append((out["loss"].item(), m.decoder.layers[1].conv.weight.grad.clone()))
    op = {"triton": "frame_gate", "triton-linear": "linear_gate"}[kernel]
    assert len(graphs) == 1 and graphs[0].code.count(f"vqspeech.{op}") == len(m.decoder.layers)
    (l0, g0), (l1, g1) = results
    assert l1 == pytest.approx(l0, rel=1e-6)
    torch.testing.assert_close(g1, g0)
