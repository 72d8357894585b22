"""The fused WaveNet generation kernel in Triton (see :mod:`.triton_backend`, which launches it).

Imported only when the kernel is first needed, so ``TRITON_INTERPRET`` (the CPU interpreter,
which is how CI runs it) is read then; triton itself is an optional dependency (``.[gpu]``).
"""

import os

import triton
import triton.language as tl

INTERPRET = tl.constexpr(os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"))


@triton.jit
def mm(a, w, PRECISION: tl.constexpr, BF16: tl.constexpr):
    """(BB, K) float32 @ (K, N) weights on tensor cores, float32 accumulation.  ``BF16``: the
    weights are bfloat16 and ``a`` is rounded to bfloat16.  The interpreter's bfloat16 dot is
    wrong (triton 3.9), so there the rounded operands are multiplied in float32, which is the
    same arithmetic: a product of two bfloat16 numbers is exact in float32."""
    if BF16:
        if INTERPRET:
            return tl.dot(a.to(tl.bfloat16).to(tl.float32), w.to(tl.float32), input_precision="ieee")
        else:
            return tl.dot(a.to(tl.bfloat16), w)
    else:
        return tl.dot(a, w, input_precision=PRECISION)


@triton.jit
def wavenet_generate(out_ptr, logits_ptr, teacher_ptr, uniforms_ptr, embed_ptr, w_past_ptr, w_cur_ptr,
                     cond_ptr, skip0_ptr, w_skip_ptr, w_res_ptr, b_res_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr,
                     dil_ptr, off_ptr, queue_ptr, B, T, F, L, hop, inv_temp, first_class,
                     R: tl.constexpr, G: tl.constexpr, S: tl.constexpr, Q: tl.constexpr,
                     BLOCK: tl.constexpr, ARGMAX: tl.constexpr, TEACHER: tl.constexpr,
                     STORE_LOGITS: tl.constexpr, PRECISION: tl.constexpr, BF16: tl.constexpr):
    rows = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)  # (BB,)
    valid = rows < B
    r = tl.arange(0, R)
    g = tl.arange(0, G)
    s = tl.arange(0, S)
    q = tl.arange(0, Q)
    skip0 = tl.load(skip0_ptr + s)  # all layers' skip biases, summed
    b1 = tl.load(b1_ptr + s)
    b2 = tl.load(b2_ptr + q)
    prev = tl.zeros((BLOCK,), tl.int64) + first_class
    for t in range(T):
        frame = t // hop
        x = tl.load(embed_ptr + prev[:, None] * R + r[None, :])  # (BB, R)
        skip = tl.zeros((BLOCK, S), tl.float32) + skip0[None, :]
        for l in range(L):  # a runtime loop: unrolling 20 layers made compiles take minutes
            slot = tl.load(off_ptr + l) + t % tl.load(dil_ptr + l)
            qp = queue_ptr + (slot * B + rows[:, None]) * R + r[None, :]
            past = tl.load(qp, mask=valid[:, None], other=0.0)  # this layer's input d samples ago
            tl.debug_barrier()
            tl.store(qp, x, mask=valid[:, None])
            wl = l * R * 2 * G + r[:, None] * (2 * G) + g[None, :]
            cp = cond_ptr + ((l * B + rows[:, None]) * F + frame) * (2 * G) + g[None, :]
            # four N = G products: one (BB, 2G) product split into halves in registers was
            # 1.3x slower on an H200 (the split is a layout shuffle)
            a = (mm(past, tl.load(w_past_ptr + wl), PRECISION, BF16) + mm(x, tl.load(w_cur_ptr + wl), PRECISION, BF16)
                 + tl.load(cp, mask=valid[:, None], other=0.0))
            b = (mm(past, tl.load(w_past_ptr + wl + G), PRECISION, BF16)
                 + mm(x, tl.load(w_cur_ptr + wl + G), PRECISION, BF16)
                 + tl.load(cp + G, mask=valid[:, None], other=0.0))
            z = (2.0 * tl.sigmoid(2.0 * a) - 1.0) * tl.sigmoid(b)  # tanh(a) * sigmoid(b)
            skip += mm(z, tl.load(w_skip_ptr + l * G * S + g[:, None] * S + s[None, :]), PRECISION, BF16)
            res = mm(z, tl.load(w_res_ptr + l * G * R + g[:, None] * R + r[None, :]), PRECISION, BF16)
            x = (x + res + tl.load(b_res_ptr + l * R + r)[None, :]) * 0.7071067811865476
        # output weights re-read each step like the layers' (held in registers they would spill)
        w1 = tl.load(w1_ptr + s[:, None] * S + s[None, :])
        o1 = tl.maximum(mm(tl.maximum(skip, 0.0), w1, PRECISION, BF16) + b1[None, :], 0.0)
        w2 = tl.load(w2_ptr + s[:, None] * Q + q[None, :])
        logits = mm(o1, w2, PRECISION, BF16) + b2[None, :]  # (BB, Q)
        if STORE_LOGITS:
            tl.store(logits_ptr + (rows[:, None] * Q + q[None, :]) * T + t, logits, mask=valid[:, None])
        if ARGMAX:
            sample = tl.argmax(logits, axis=1).to(tl.int64)
        else:
            m = tl.max(logits, axis=1)
            weights = tl.exp((logits - m[:, None]) * inv_temp).to(tl.float64)
            cdf = tl.cumsum(weights, axis=1)
            u = tl.load(uniforms_ptr + rows * T + t, mask=valid, other=0.0)
            target = u * tl.sum(weights, axis=1)
            # the first class whose cumulative weight exceeds the target
            sample = tl.minimum(tl.sum((cdf <= target[:, None]).to(tl.int64), axis=1), Q - 1)
        tl.store(out_ptr + rows * T + t, sample, mask=valid)
        if TEACHER:
            prev = tl.load(teacher_ptr + rows * T + t, mask=valid, other=first_class)
        else:
            prev = tl.where(valid, sample, first_class)
