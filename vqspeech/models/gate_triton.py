"""The Triton kernels of :mod:`.gate_kernel` (imported on first use: triton is optional)."""

import triton
import triton.language as tl


@triton.jit
def _tile(pid_frame, pid_c, T, F, hop, G, ROWS: tl.constexpr, CB: tl.constexpr):
    """This program's rows (its frame's samples) and channels, and their mask."""
    b = pid_frame // F
    f = pid_frame % F
    k = tl.arange(0, ROWS)
    t = f * hop + k
    c = pid_c * CB + tl.arange(0, CB)
    mask = ((k < hop) & (t < T))[:, None] & (c < G)[None, :]
    rows = (b * T + t).to(tl.int64)
    return rows, c, mask


@triton.jit
def _gate_inputs(h_ptr, cond_ptr, pid_frame, rows, c, mask, G):
    """The gate's two halves, a and b (ROWS, CB) float32, with the frame's conditioning added."""
    cmask = c < G
    ca = tl.load(cond_ptr + pid_frame * 2 * G + c, mask=cmask, other=0.0).to(tl.float32)
    cb = tl.load(cond_ptr + pid_frame * 2 * G + G + c, mask=cmask, other=0.0).to(tl.float32)
    hp = h_ptr + rows[:, None] * 2 * G + c[None, :]
    a = tl.load(hp, mask=mask, other=0.0).to(tl.float32) + ca[None, :]
    b = tl.load(hp + G, mask=mask, other=0.0).to(tl.float32) + cb[None, :]
    return a, b


@triton.jit
def gate_forward(h_ptr, cond_ptr, z_ptr, T, F, hop, G, ROWS: tl.constexpr, CB: tl.constexpr):
    pid_frame = tl.program_id(0)
    rows, c, mask = _tile(pid_frame, tl.program_id(1), T, F, hop, G, ROWS, CB)
    a, b = _gate_inputs(h_ptr, cond_ptr, pid_frame, rows, c, mask, G)
    z = (2.0 * tl.sigmoid(2.0 * a) - 1.0) * tl.sigmoid(b)  # tanh(a) * sigmoid(b)
    tl.store(z_ptr + rows[:, None] * G + c[None, :], z.to(z_ptr.dtype.element_ty), mask=mask)


@triton.jit
def gate_backward(gz_ptr, h_ptr, cond_ptr, gh_ptr, gcond_ptr, T, F, hop, G,
                  ROWS: tl.constexpr, CB: tl.constexpr):
    pid_frame = tl.program_id(0)
    rows, c, mask = _tile(pid_frame, tl.program_id(1), T, F, hop, G, ROWS, CB)
    a, b = _gate_inputs(h_ptr, cond_ptr, pid_frame, rows, c, mask, G)
    store_gate_gradients(gz_ptr, gh_ptr, gcond_ptr + pid_frame * 2 * G, a, b, rows, c, mask, c < G, G)


@triton.jit
def store_gate_gradients(gz_ptr, gh_ptr, gcond_ptr, a, b, rows, c, mask, cmask, G):
    """The gate's backward for one frame's tile: the gradients of its inputs a and b (ROWS, CB) from
    z's gradient, stored into ``gh_ptr``'s (rows, 2G) halves, and their sums over the frame's
    samples (masked rows are zeros) into the frame's conditioning gradient at ``gcond_ptr``."""
    gz = tl.load(gz_ptr + rows[:, None] * G + c[None, :], mask=mask, other=0.0).to(tl.float32)
    ta = 2.0 * tl.sigmoid(2.0 * a) - 1.0
    sb = tl.sigmoid(b)
    ga = tl.where(mask, gz * sb * (1.0 - ta * ta), 0.0)
    gb = tl.where(mask, gz * ta * sb * (1.0 - sb), 0.0)
    gp = gh_ptr + rows[:, None] * 2 * G + c[None, :]
    tl.store(gp, ga.to(gh_ptr.dtype.element_ty), mask=mask)
    tl.store(gp + G, gb.to(gh_ptr.dtype.element_ty), mask=mask)
    tl.store(gcond_ptr + c, tl.sum(ga, axis=0).to(gcond_ptr.dtype.element_ty), mask=cmask)
    tl.store(gcond_ptr + G + c, tl.sum(gb, axis=0).to(gcond_ptr.dtype.element_ty), mask=cmask)
