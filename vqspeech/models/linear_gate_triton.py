"""The Triton kernels of :mod:`.linear_gate` (imported on first use: triton is optional).

One program owns ``FPP`` consecutive frames of one sequence and a block of ``CB`` gate channels.
It loads its slice of the weights once (both halves, a and b: two (KB, CB) tiles) and then, frame
by frame, multiplies the frame's rows of ``x`` by them, adds bias and conditioning and applies the
gate (forward) or its derivative (backward), so the (rows, 2G) product never reaches memory in the
forward, and the backward sums each frame's conditioning gradient in registers.
"""

import triton
import triton.language as tl

# the generation kernel's product: its interpreter path works around the interpreter's wrong bf16 dot
from ..generation.triton_kernel import mm
from .gate_triton import store_gate_gradients


@triton.jit
def _weights(w_ptr, bias_ptr, c, cmask, k, kmask, K, G):
    """This program's weight tiles, transposed to (KB, CB), for the gate's halves a and b, and their biases."""
    m = kmask[:, None] & cmask[None, :]
    wa = tl.load(w_ptr + c[None, :] * K + k[:, None], mask=m, other=0.0)
    wb = tl.load(w_ptr + (c[None, :] + G) * K + k[:, None], mask=m, other=0.0)
    ba = tl.load(bias_ptr + c, mask=cmask, other=0.0).to(tl.float32)
    bb = tl.load(bias_ptr + G + c, mask=cmask, other=0.0).to(tl.float32)
    return wa, wb, ba, bb


@triton.jit
def _gate_inputs(x_ptr, cond_ptr, wa, wb, ba, bb, seq, f, c, cmask, k, kmask, T, F, hop, K, G,
                 ROWS: tl.constexpr, IEEE: tl.constexpr):
    """Frame ``f`` of sequence ``seq``: its rows (int64), their mask (ROWS, CB), and the gate's
    inputs a and b (ROWS, CB) float32: x @ w + bias + the frame's conditioning."""
    r = tl.arange(0, ROWS)
    t = f * hop + r
    rmask = (r < hop) & (t < T)  # (T <= F * hop, so these rows' frame is < F)
    rows = (seq * T + t).to(tl.int64)
    x = tl.load(x_ptr + rows[:, None] * K + k[None, :], mask=rmask[:, None] & kmask[None, :], other=0.0)
    frame = (seq * F + f).to(tl.int64)
    cm = cmask & (f + tl.zeros_like(c) < F)  # f may be past the last frame of the program's group
    ca = tl.load(cond_ptr + frame * 2 * G + c, mask=cm, other=0.0).to(tl.float32)
    cb = tl.load(cond_ptr + frame * 2 * G + G + c, mask=cm, other=0.0).to(tl.float32)
    # float32 inputs multiplied in float32 (not tf32); bf16 ones on tensor cores
    a = mm(x, wa, "ieee", not IEEE) + (ba + ca)[None, :]
    b = mm(x, wb, "ieee", not IEEE) + (bb + cb)[None, :]
    return rows, rmask[:, None] & cmask[None, :], a, b


@triton.jit
def _program(w_ptr, bias_ptr, F, K, G, KB: tl.constexpr, CB: tl.constexpr, FPP: tl.constexpr):
    """This program's sequence, first frame, channels (and mask), input channels (and mask) and
    weight tiles."""
    # one axis, the channel blocks varying fastest: the programs that read the same rows of x run
    # together, so all but the first find them in L2
    blocks = tl.cdiv(G, CB)
    group = tl.program_id(0) // blocks
    groups = tl.cdiv(F, FPP)
    seq = group // groups
    f0 = (group % groups) * FPP
    c = (tl.program_id(0) % blocks) * CB + tl.arange(0, CB)
    cmask = c < G
    k = tl.arange(0, KB)
    kmask = k < K
    wa, wb, ba, bb = _weights(w_ptr, bias_ptr, c, cmask, k, kmask, K, G)
    return seq, f0, c, cmask, k, kmask, wa, wb, ba, bb


@triton.jit
def linear_gate_forward(x_ptr, w_ptr, bias_ptr, cond_ptr, z_ptr, T, F, hop, K, G,
                        ROWS: tl.constexpr, KB: tl.constexpr, CB: tl.constexpr, FPP: tl.constexpr,
                        IEEE: tl.constexpr):
    seq, f0, c, cmask, k, kmask, wa, wb, ba, bb = _program(w_ptr, bias_ptr, F, K, G, KB, CB, FPP)
    for i in range(FPP):
        rows, mask, a, b = _gate_inputs(x_ptr, cond_ptr, wa, wb, ba, bb, seq, f0 + i, c, cmask, k, kmask,
                                        T, F, hop, K, G, ROWS, IEEE)
        z = (2.0 * tl.sigmoid(2.0 * a) - 1.0) * tl.sigmoid(b)  # tanh(a) * sigmoid(b)
        tl.store(z_ptr + rows[:, None] * G + c[None, :], z.to(z_ptr.dtype.element_ty), mask=mask)


@triton.jit
def linear_gate_backward(gz_ptr, x_ptr, w_ptr, bias_ptr, cond_ptr, gh_ptr, gcond_ptr, T, F, hop, K, G,
                         ROWS: tl.constexpr, KB: tl.constexpr, CB: tl.constexpr, FPP: tl.constexpr,
                         IEEE: tl.constexpr):
    seq, f0, c, cmask, k, kmask, wa, wb, ba, bb = _program(w_ptr, bias_ptr, F, K, G, KB, CB, FPP)
    for i in range(FPP):
        f = f0 + i
        # the product recomputed (the forward kept x, not the (rows, 2G) product)
        rows, mask, a, b = _gate_inputs(x_ptr, cond_ptr, wa, wb, ba, bb, seq, f, c, cmask, k, kmask,
                                        T, F, hop, K, G, ROWS, IEEE)
        frame_grad = gcond_ptr + (seq * F + f).to(tl.int64) * 2 * G
        store_gate_gradients(gz_ptr, gh_ptr, frame_grad, a, b, rows, c, mask, cmask & (f + tl.zeros_like(c) < F), G)
