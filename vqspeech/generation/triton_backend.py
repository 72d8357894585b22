"""Fused WaveNet generation: the whole sampling loop in one Triton kernel (method ``triton``).

On a GPU the cached step of :mod:`.reference` is ~10 tiny kernels per layer and sample;
their launches, not the arithmetic, bound the speed, and even a CUDA graph (:mod:`.cuda_graph`)
still runs them one after another.  Here, in the style of NVIDIA's nv-wavenet persistent
kernel, one launch generates every sample: each program owns ``BLOCK_B`` batch elements
(the folded segments of an utterance, or many utterances) and loops over samples and layers
itself, with the matrix products on tensor cores (``tl.dot``) and the inverse-CDF sampling
inside.  Batch elements never interact, so programs never wait for each other.

Memory: the layer queues live in one (sum of dilations, B, R) float32 buffer in global
memory (each program touches only its own rows); the weights are re-read from L2 every step.

Precision: ``precision="tf32"`` (the default on CUDA) rounds the products' inputs to 10-bit
mantissas, so logits differ from the float32 reference by ~1e-3 and a draw that falls near
a CDF step can flip (after which the sequence follows another path of the same model);
``"ieee"`` keeps float32 products (logits within ~1e-5).  The tolerance is tested with teacher
forcing (``tests/test_generation_backends.py``).  Runs on the CPU under ``TRITON_INTERPRET=1``
(slowly), which is how CI checks the kernel.

Sizes: R, G, S and Q must be powers of two >= 16 (``tl.dot`` and ``tl.arange`` need it).
"""

from __future__ import annotations

import functools
import os

import torch

from .sampling import SamplingOptions
from .step_weights import StepWeights, frame_conditioning

BLOCK_B = 16  # batch elements per program: the smallest M of a tensor-core tl.dot


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def available(device: torch.device) -> bool:
    """Whether this backend can run on ``device`` (triton importable, CUDA or the interpreter)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return device.type == "cuda" or interpreting()


@functools.lru_cache(maxsize=2)
def _kernel(interpret: bool):
    """The jitted kernel; built on first use so TRITON_INTERPRET is read when it is needed."""
    import triton
    import triton.language as tl

    @triton.jit
    def wavenet_generate(out_ptr, logits_ptr, teacher_ptr, uniforms_ptr, embed_ptr, w_past_ptr, w_cur_ptr,
                         cond_ptr, skip0_ptr, w_skip_ptr, w_res_ptr, b_res_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr,
                         dil_ptr, off_ptr, queue_ptr, B, T, F, L, hop, inv_temp, first_class,
                         R: tl.constexpr, G: tl.constexpr, S: tl.constexpr, Q: tl.constexpr,
                         BLOCK: tl.constexpr, ARGMAX: tl.constexpr, TEACHER: tl.constexpr,
                         STORE_LOGITS: tl.constexpr, PRECISION: tl.constexpr):
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
                a = (tl.dot(past, tl.load(w_past_ptr + wl), input_precision=PRECISION)
                     + tl.dot(x, tl.load(w_cur_ptr + wl), input_precision=PRECISION)
                     + tl.load(cp, mask=valid[:, None], other=0.0))
                b = (tl.dot(past, tl.load(w_past_ptr + wl + G), input_precision=PRECISION)
                     + tl.dot(x, tl.load(w_cur_ptr + wl + G), input_precision=PRECISION)
                     + tl.load(cp + G, mask=valid[:, None], other=0.0))
                z = (2.0 * tl.sigmoid(2.0 * a) - 1.0) * tl.sigmoid(b)  # tanh(a) * sigmoid(b)
                skip += tl.dot(z, tl.load(w_skip_ptr + l * G * S + g[:, None] * S + s[None, :]),
                               input_precision=PRECISION)
                res = tl.dot(z, tl.load(w_res_ptr + l * G * R + g[:, None] * R + r[None, :]), input_precision=PRECISION)
                x = (x + res + tl.load(b_res_ptr + l * R + r)[None, :]) * 0.7071067811865476
            # output weights re-read each step like the layers' (held in registers they would spill)
            w1 = tl.load(w1_ptr + s[:, None] * S + s[None, :])
            o1 = tl.maximum(tl.dot(tl.maximum(skip, 0.0), w1, input_precision=PRECISION) + b1[None, :], 0.0)
            w2 = tl.load(w2_ptr + s[:, None] * Q + q[None, :])
            logits = tl.dot(o1, w2, input_precision=PRECISION) + b2[None, :]  # (BB, Q)
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

    return wavenet_generate


def check_sizes(model) -> None:
    """ValueError unless the decoder's channel counts suit the kernel."""
    c = model.decoder.cfg
    for name, n in (("residual_channels", c.residual_channels), ("gate_channels", c.gate_channels),
                    ("skip_channels", c.skip_channels), ("quantization_channels", c.quantization_channels)):
        if n < 16 or n & (n - 1):
            raise ValueError(f"the triton generator needs decoder_conf.{name} to be a power of two >= 16, got {n}")


@torch.no_grad()
def generate_triton(model, codes: torch.Tensor, speaker: torch.Tensor, T: int, uniforms: torch.Tensor,
                    opts: SamplingOptions, teacher: torch.Tensor | None = None, return_logits: bool = False,
                    precision: str | None = None):
    """(B, F) codes, (B,) speakers -> (B, T) int64 classes [and (B, Q, T) logits].

    ``teacher`` (B, T) classes are fed back instead of the samples (testing).
    """
    check_sizes(model)
    device = codes.device
    if not available(device):
        raise ValueError("the triton generator needs triton and a CUDA device (or TRITON_INTERPRET=1 on the CPU)")
    precision = precision or ("tf32" if device.type == "cuda" else "ieee")
    cfg = model.decoder.cfg
    R, G, S, Q = cfg.residual_channels, cfg.gate_channels, cfg.skip_channels, cfg.quantization_channels
    w = StepWeights.from_decoder(model.decoder)
    cond = frame_conditioning(model, codes, speaker, w.b_conv)  # (L, B, F, 2G)
    B, F = codes.shape[:2]
    dil = w.dilations.to(device)
    off = w.queue_offsets.to(device)
    queue = torch.zeros(int(w.dilations.sum()), B, R, device=device)
    out = torch.empty(B, T, dtype=torch.long, device=device)
    logits = torch.empty(B, Q, T, device=device) if return_logits else out
    teacher_t = teacher.to(device=device, dtype=torch.long).contiguous() if teacher is not None else out
    u = uniforms.to(device=device, dtype=torch.float64).contiguous()
    grid = (-(-B // BLOCK_B),)
    _kernel(interpreting())[grid](
        out, logits, teacher_t, u, w.embed, w.w_past, w.w_cur, cond, w.b_skip.sum(0).contiguous(), w.w_skip,
        w.w_res, w.b_res, w.w1, w.b1.contiguous(), w.w2, w.b2.contiguous(), dil, off, queue,
        B, T, F, w.num_layers, model.hop, float(opts.inverse_temperature), Q // 2,
        R=R, G=G, S=S, Q=Q, BLOCK=BLOCK_B, ARGMAX=bool(opts.argmax), TEACHER=teacher is not None,
        STORE_LOGITS=return_logits, PRECISION=precision, num_warps=4)
    if return_logits:
        return out, logits
    return out
