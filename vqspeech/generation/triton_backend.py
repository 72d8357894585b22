"""Fused WaveNet generation: the whole sampling loop in one Triton kernel (method ``triton``).

On a GPU the cached step of :mod:`.reference` is ~10 tiny kernels per layer and sample;
their launches, not the arithmetic, bound the speed, and even a CUDA graph (:mod:`.cuda_graph`)
still runs them one after another.  Here, in the style of NVIDIA's nv-wavenet persistent
kernel, one launch generates every sample: each program owns ``KernelShape.block`` batch elements
(the folded segments of an utterance, or many utterances) and loops over samples and layers
itself, with the matrix products on tensor cores (``tl.dot``) and the inverse-CDF sampling
inside.  Batch elements never interact, so programs never wait for each other.

Memory: the layer queues live in one (sum of dilations, B, R) float32 buffer in global
memory (each program touches only its own rows); the weights are re-read from L2 every step.

Precision: ``"bf16"`` (the default on CUDA) stores the weight matrices as bfloat16 (half the
bytes re-read each step) and rounds the products' inputs to bfloat16, so logits differ from the
float32 reference by ~0.3% of their range (random weights; within 2% tested) and a draw that
falls near a CDF step can flip (after which the sequence follows another path of the same
model); ``"tf32"`` (method ``triton-tf32``) rounds the inputs to 10-bit mantissas (logits
~1e-3 from float32, 1.6x slower); ``"ieee"`` keeps float32 products (logits within ~1e-5, but
30x slower on an H200, where float32 products leave the tensor cores).  The tolerances are
tested with teacher forcing (``tests/test_generation_triton.py``).  Runs on the CPU under
``TRITON_INTERPRET=1`` (slowly), which is how CI checks the kernel; the kernel itself is in
:mod:`.triton_kernel`.

Sizes: R, G, S and Q must be powers of two >= 16 (``tl.dot`` and ``tl.arange`` need it).
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass

import torch

from .sampling import SamplingOptions
from .step_weights import StepWeights, frame_conditioning


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def unavailable_reason() -> str | None:
    """What this machine lacks for the backend (one line), or None: triton must be importable."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return "triton is not installed (pip install 'vqspeech[gpu]')"
    return None


def available(device: torch.device) -> bool:
    """Whether this backend can run on ``device`` (triton importable, CUDA or the interpreter)."""
    return unavailable_reason() is None and (device.type == "cuda" or interpreting())


@functools.lru_cache(maxsize=2)
def _kernel(interpret: bool):
    """The jitted kernel, imported on first use so TRITON_INTERPRET is read when it is needed
    (``interpret`` keys the cache)."""
    from .triton_kernel import wavenet_generate

    return wavenet_generate


def check_sizes(model) -> None:
    """ValueError unless the decoder's channel counts suit the kernel."""
    c = model.decoder.cfg
    for name, n in (("residual_channels", c.residual_channels), ("gate_channels", c.gate_channels),
                    ("skip_channels", c.skip_channels), ("quantization_channels", c.quantization_channels)):
        if n < 16 or n & (n - 1):
            raise ValueError(f"the triton generator needs decoder_conf.{name} to be a power of two >= 16, got {n}")


@dataclass(frozen=True)
class KernelShape:
    """How the kernel is laid out; every shape computes the same recursion.

    block: batch elements per program (>= 16, the smallest M of a tensor-core ``tl.dot``);
    num_warps: warps per program.  ``benchmarks/triton_variants.py`` times them."""

    block: int = 16
    num_warps: int = 4


PRECISIONS = ("ieee", "tf32", "bf16")
# What a call without ``shape`` / ``precision`` uses; :func:`kernel_settings` changes it for a
# block of code (the benchmark sweeps shapes through ``convert``, which does not pass them on).
_settings = {"shape": KernelShape(), "precision": None}


@contextlib.contextmanager
def kernel_settings(shape: KernelShape | None = None, precision: str | None = None):
    """Within the block, calls that do not name a shape or precision use these."""
    saved = dict(_settings)
    _settings.update({k: v for k, v in (("shape", shape), ("precision", precision)) if v is not None})
    try:
        yield
    finally:
        _settings.update(saved)


@torch.no_grad()
def generate_triton(model, codes: torch.Tensor, speaker: torch.Tensor, T: int, uniforms: torch.Tensor,
                    opts: SamplingOptions, teacher: torch.Tensor | None = None, return_logits: bool = False,
                    precision: str | None = None, shape: KernelShape | None = None):
    """(B, F) codes, (B,) speakers -> (B, T) int64 classes [and (B, Q, T) logits].

    ``teacher`` (B, T) classes are fed back instead of the samples (testing).  ``precision``:
    ``ieee`` (float32 products; the interpreter's default), ``tf32`` or ``bf16`` (bfloat16 weights
    and product inputs, float32 accumulation and everything else; the CUDA default: 1.6x the
    speed of tf32 on an H200, ``benchmarks/triton_variants.py``).
    """
    check_sizes(model)
    device = codes.device
    if not available(device):
        raise ValueError("the triton generator needs triton and a CUDA device (or TRITON_INTERPRET=1 on the CPU)")
    shape = shape or _settings["shape"]
    precision = precision or _settings["precision"] or ("bf16" if device.type == "cuda" else "ieee")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown triton precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if shape.block < 16 or shape.block & (shape.block - 1):
        raise ValueError(f"the triton kernel's block must be a power of two >= 16, got {shape.block}")
    cfg = model.decoder.cfg
    R, G, S, Q = cfg.residual_channels, cfg.gate_channels, cfg.skip_channels, cfg.quantization_channels
    w = StepWeights.from_decoder(model.decoder)
    cond = frame_conditioning(model, codes, speaker, w.b_conv)  # (L, B, F, 2G)
    mats = [w.w_past, w.w_cur, w.w_skip, w.w_res, w.w1, w.w2]
    if precision == "bf16":
        mats = [m.to(torch.bfloat16).contiguous() for m in mats]
    w_past, w_cur, w_skip, w_res, w1, w2 = mats
    B, F = codes.shape[:2]
    dil = w.dilations.to(device)
    off = w.queue_offsets.to(device)
    queue = torch.zeros(int(w.dilations.sum()), B, R, device=device)
    out = torch.empty(B, T, dtype=torch.long, device=device)
    logits = torch.empty(B, Q, T, device=device) if return_logits else out
    teacher_t = teacher.to(device=device, dtype=torch.long).contiguous() if teacher is not None else out
    u = uniforms.to(device=device, dtype=torch.float64).contiguous()
    grid = (-(-B // shape.block),)
    _kernel(interpreting())[grid](
        out, logits, teacher_t, u, w.embed, w_past, w_cur, cond, w.b_skip.sum(0).contiguous(), w_skip,
        w_res, w.b_res, w1, w.b1.contiguous(), w2, w.b2.contiguous(), dil, off, queue,
        B, T, F, w.num_layers, model.hop, float(opts.inverse_temperature), Q // 2,
        R=R, G=G, S=S, Q=Q, BLOCK=shape.block, ARGMAX=bool(opts.argmax), TEACHER=teacher is not None,
        STORE_LOGITS=return_logits, PRECISION="ieee" if precision == "bf16" else precision,
        BF16=precision == "bf16", num_warps=shape.num_warps)
    if return_logits:
        return out, logits
    return out


def generate_triton_tf32(model, codes: torch.Tensor, speaker: torch.Tensor, T: int, uniforms: torch.Tensor,
                         opts: SamplingOptions, teacher: torch.Tensor | None = None, return_logits: bool = False):
    """:func:`generate_triton` with TF32 products (method ``triton-tf32``): logits ~1e-3 from float32."""
    return generate_triton(model, codes, speaker, T, uniforms, opts, teacher, return_logits,
                           precision="tf32" if codes.device.type == "cuda" else "ieee")
