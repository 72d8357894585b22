"""A WaveNet layer's kernel-2 convolution and gate in one Triton kernel (training on CUDA).

For channels-last inputs ``x`` (B, T, K) (a layer's [x_{t-d}, x_t], K = 2R), weights ``w`` (2G, K),
bias (2G) and per-frame gate biases ``cond`` (B, F, 2G) held for ``hop`` samples each:

    h = x @ w.T + bias + cond[t // hop]                                   (B, T, 2G), never stored
    z = tanh(h[..., :G]) * sigmoid(h[..., G:])                              (B, T, G)

which is what the channels-last form of :mod:`.wavenet` computes with a matrix product followed by
:func:`.gate_kernel.frame_gate` (or the torch gate).  Why: every part of a gpu.yaml training step is
memory-bound, and ``h`` is the largest tensor a layer makes (0.27 GB in bf16 at batch 32 x 16,384).
The product's own kernel writes it and the gate reads it back; here it stays in registers.  The
backward recomputes ``h`` from ``x`` (which the weight gradient keeps anyway) instead of reading a
saved copy, writes ``grad_h`` and sums each frame's conditioning gradient in the same pass (as
:mod:`.gate_kernel` does); the input and weight gradients are then two matrix products, and the
bias gradient is the sum of the per-frame conditioning gradients.  Per layer and step that is about
0.67 GB less memory traffic (a count of bytes; not yet measured on a GPU: ``benchmarks/training.py``'s
``+ Triton convolution-gate kernel`` row) and 0.26 GB fewer saved activations (measured:
``benchmarks/training.py --saved-memory``).

The products run on tensor cores in the inputs' dtype (bf16 under autocast, as ``F.linear`` would),
with float32 accumulation and float32 gate arithmetic; float32 inputs are multiplied in float32.
Registered as ``torch.library.triton_op`` custom ops with autograd, so ``torch.compile`` keeps them in
its graph.  Runs on the CPU under ``TRITON_INTERPRET=1``, which is how the tests check it.
"""

from __future__ import annotations

import functools

import torch

from .gate_kernel import next_power_of_two, tracing_in_interpreter


def kernel_shape(hop: int, K: int, G: int, frames: int) -> dict:
    """Tile sizes and warps: ROWS a frame's samples, KB the input channels, CB a block of gate
    channels and FPP frames per program (the weight tiles are loaded once per program), all powers
    of two >= 16 where ``tl.dot`` needs it.  For the gpu.yaml decoder the forward needs 106
    registers a thread and the backward 190, without spilling (``python
    benchmarks/triton_resources.py``, compiled for sm_90)."""
    return dict(ROWS=max(16, next_power_of_two(hop)), KB=max(16, next_power_of_two(K)),
                CB=max(16, min(64, next_power_of_two(G))), FPP=min(8, next_power_of_two(frames)), num_warps=8)


@functools.lru_cache(maxsize=1)
def _ops():
    """Register the ops on first use (triton imported then)."""
    from torch.library import triton_op, wrap_triton

    from .linear_gate_triton import linear_gate_backward, linear_gate_forward

    def launch(x, w, cond, hop):
        B, T, K = x.shape
        F, G = cond.shape[1], w.shape[0] // 2
        meta = kernel_shape(hop, K, G, F)
        grid = (B * -(-F // meta["FPP"]) * -(-G // meta["CB"]),)
        return grid, dict(meta, IEEE=x.dtype == torch.float32), (T, F, hop, K, G)

    @triton_op("vqspeech::linear_gate", mutates_args=())
    def linear_gate_op(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor, cond: torch.Tensor,
                       hop: int) -> torch.Tensor:
        B, T, _ = x.shape
        z = x.new_empty(B, T, w.shape[0] // 2)
        if not tracing_in_interpreter(x):
            grid, meta, sizes = launch(x, w, cond, hop)
            wrap_triton(linear_gate_forward)[grid](x, w, bias, cond, z, *sizes, **meta)
        return z

    @triton_op("vqspeech::linear_gate_backward", mutates_args=())
    def linear_gate_backward_op(grad_z: torch.Tensor, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor,
                                cond: torch.Tensor, hop: int) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, _ = x.shape
        grad_h = x.new_empty(B, T, w.shape[0])
        grad_cond = torch.empty_like(cond)
        if not tracing_in_interpreter(x):
            grid, meta, sizes = launch(x, w, cond, hop)
            wrap_triton(linear_gate_backward)[grid](grad_z, x, w, bias, cond, grad_h, grad_cond, *sizes, **meta)
        return grad_h, grad_cond

    def setup_context(ctx, inputs, output):
        x, w, bias, cond, hop = inputs
        ctx.save_for_backward(x, w, bias, cond)
        ctx.hop = hop

    def backward(ctx, grad_z):
        x, w, bias, cond = ctx.saved_tensors
        grad_h, grad_cond = linear_gate_backward_op(grad_z.contiguous(), x, w, bias, cond, ctx.hop)
        rows = grad_h.reshape(-1, grad_h.shape[-1])  # (B*T, 2G)
        grad_x = (rows @ w).view(x.shape)
        grad_w = rows.t() @ x.reshape(-1, x.shape[-1])
        # bias is added to every sample as cond is to its frame's: its gradient is theirs summed
        grad_bias = grad_cond.float().sum((0, 1)).to(bias.dtype)
        return grad_x, grad_w, grad_bias, grad_cond, None

    linear_gate_op.register_autograd(backward, setup_context=setup_context)
    return linear_gate_op


def register() -> None:
    """Register the ops (imports triton).  ``torch.compile`` cannot trace the registration, so a model
    that a compiled graph will run registers first: setting ``WaveNet.gate_kernel`` does."""
    _ops()


def linear_gate(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor, cond: torch.Tensor, hop: int) -> torch.Tensor:
    """x (B, T, K) @ w (2G, K).T + bias (2G) + cond (B, F, 2G) (F * hop >= T) -> gate z (B, T, G) in
    x's dtype; differentiable in x, w, bias and cond.  ``w`` and ``cond`` are cast to x's dtype;
    the caller casts x (to the autocast dtype, as ``F.linear`` would)."""
    B, T, K = x.shape
    if w.dim() != 2 or w.shape[1] != K or w.shape[0] % 2:
        raise ValueError(f"weights {tuple(w.shape)} do not fit inputs of {K} channels")
    if cond.shape[1] * hop < T:
        raise ValueError(f"{cond.shape[1]} frames of {hop} samples do not cover {T} samples")
    if cond.shape[0] != B or cond.shape[2] != w.shape[0]:
        raise ValueError(f"conditioning {tuple(cond.shape)} does not fit {B} sequences of {w.shape[0]} gate inputs")
    if not torch.compiler.is_compiling():
        register()  # eager callers register on first use
    return torch.ops.vqspeech.linear_gate(x.contiguous(), w.to(x.dtype).contiguous(), bias.contiguous(),
                                          cond.to(x.dtype).contiguous(), hop)
