"""The WaveNet gate with frame-rate conditioning as a hand-written Triton kernel pair (training on CUDA).

For channels-last activations ``h`` (B, T, 2G) (the layer's kernel-2 convolution) and per-frame gate
biases ``cond`` (B, F, 2G) held for ``hop`` samples each:

    z = tanh(h[..., :G] + cond_a[t // hop]) * sigmoid(h[..., G:] + cond_b[t // hop])      (B, T, G)

which is what ``add_frame_rate_last`` and the gate compute in :mod:`.wavenet`.  Inductor compiles that
form's backward into two kernels: the element-wise gradient (586 us per layer on an H200 at batch
32 x 16,384, under a third of the bandwidth's rate) and the conditioning's gradient, a sum over each
frame's ``hop`` samples along a strided axis (236 us).  Here one program owns one frame of one
sequence and a block of channels, so the backward writes ``grad_h`` and sums that frame's
conditioning gradient in registers in one pass, without atomics.

Arithmetic is float32 inside the kernels whatever the tensors' dtype (bf16 under autocast), so the
results equal the torch form's within its rounding.  Registered as ``torch.library.triton_op``
custom ops with autograd, so ``torch.compile`` keeps them in its graph.  Runs on the CPU under
``TRITON_INTERPRET=1``, which is how the tests check it; triton is an optional dependency.
"""

from __future__ import annotations

import functools

import torch


def next_power_of_two(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def kernel_shape(hop: int, G: int) -> dict:
    """Tile and warps: ROWS a frame's samples, CB a block of gate channels (a tile of at most ~4k
    elements).  8 warps: with 4, the backward needs 255 registers a thread and spills for the
    gpu.yaml tile, 118 with 8 (``python benchmarks/triton_resources.py``, compiled for sm_90)."""
    rows = next_power_of_two(hop)
    return dict(ROWS=rows, CB=min(next_power_of_two(G), max(16, 4096 // rows)), num_warps=8)


def tracing_in_interpreter(t: torch.Tensor) -> bool:
    """Whether a compiler is tracing an op with fake tensors while Triton's interpreter is on.  On a
    GPU, ``wrap_triton`` turns the launch into a graph node that fake tensors pass through; under
    ``TRITON_INTERPRET=1`` it hands back the plain kernel, which would read the fake tensors' memory.
    So the ops skip the launch then: their outputs' shapes are all that Dynamo's capture needs, which
    lets the tests check on the CPU that a compiled decoder keeps them in one graph.  (A trace that
    inlines the ops' bodies, as AOTAutograd does, is only faithful with real Triton, on a GPU.)"""
    from torch._subclasses.fake_tensor import is_fake

    from ..generation.triton_backend import interpreting

    return interpreting() and is_fake(t)


@functools.lru_cache(maxsize=1)
def _ops():
    """Define the kernels and register the ops on first use (triton imported then)."""
    from torch.library import triton_op, wrap_triton

    from .gate_triton import gate_backward, gate_forward

    def launch(h, cond, hop):
        B, T, G2 = h.shape
        F = cond.shape[1]
        G = G2 // 2
        meta = kernel_shape(hop, G)
        return (B * F, -(-G // meta["CB"])), meta, (T, F, hop, G)

    @triton_op("vqspeech::frame_gate", mutates_args=())
    def frame_gate(h: torch.Tensor, cond: torch.Tensor, hop: int) -> torch.Tensor:
        B, T, G2 = h.shape
        z = h.new_empty(B, T, G2 // 2)
        if not tracing_in_interpreter(h):
            grid, meta, sizes = launch(h, cond, hop)
            wrap_triton(gate_forward)[grid](h, cond, z, *sizes, **meta)
        return z

    @triton_op("vqspeech::frame_gate_backward", mutates_args=())
    def frame_gate_backward(grad_z: torch.Tensor, h: torch.Tensor, cond: torch.Tensor,
                            hop: int) -> tuple[torch.Tensor, torch.Tensor]:
        grad_h = torch.empty_like(h)
        grad_cond = torch.empty_like(cond)
        if not tracing_in_interpreter(h):
            grid, meta, sizes = launch(h, cond, hop)
            wrap_triton(gate_backward)[grid](grad_z, h, cond, grad_h, grad_cond, *sizes, **meta)
        return grad_h, grad_cond

    def setup_context(ctx, inputs, output):
        h, cond, hop = inputs
        ctx.save_for_backward(h, cond)
        ctx.hop = hop

    def backward(ctx, grad_z):
        h, cond = ctx.saved_tensors
        grad_h, grad_cond = frame_gate_backward(grad_z.contiguous(), h, cond, ctx.hop)
        return grad_h, grad_cond, None

    frame_gate.register_autograd(backward, setup_context=setup_context)
    return frame_gate


def register() -> None:
    """Define the kernels and register the ops (imports triton).  ``torch.compile`` cannot trace the
    registration, so a model that a compiled graph will run registers first: setting
    ``WaveNet.gate_kernel`` does."""
    _ops()


def frame_gate(h: torch.Tensor, cond: torch.Tensor, hop: int) -> torch.Tensor:
    """h (B, T, 2G) + cond (B, F, 2G) with F * hop >= T -> z (B, T, G) in h's dtype; differentiable
    in both.  ``cond`` is cast to h's dtype (as the torch form's add would round it)."""
    if cond.shape[1] * hop < h.shape[1]:
        raise ValueError(f"{cond.shape[1]} frames of {hop} samples do not cover {h.shape[1]} samples")
    if not torch.compiler.is_compiling():
        register()  # eager callers register on first use
    return torch.ops.vqspeech.frame_gate(h.contiguous(), cond.to(h.dtype).contiguous(), hop)
