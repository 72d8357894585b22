"""Cached WaveNet generation on CPUs with AVX2 and FMA but no AVX-512 (method ``avx2-cpu``).

:mod:`.bf16_cpu_backend`'s kernel built with ``-DVQ_AVX2``: the same recursion, packed
bfloat16 weights and bfloat16 rounding of every product's inputs, in 8-float vectors.  AVX2 has
no bfloat16 arithmetic, so each packed weight pair is widened to two float32 vectors in
registers (a shift and a mask) and the products are FMAs; a product of two bfloat16 numbers is
exact in float32, so the logits differ from ``bf16-cpu``'s by float32 summation order only, and
``tests/test_generation_bf16_cpu.py`` runs its checks on this build too.

Why it exists: most x86-64 CPUs in use (AMD Zen 1 to 3, Intel's client cores) have AVX2 but not
AVX-512, and there the float32 fallbacks are slow.  OpenBLAS has no small-matrix kernels for
them, so ``numba-gemm``'s per-layer products of a few rows cost more than ``numba``'s
matrix-vector loops (``benchmarks/generation.py``, README "AVX2").

Where it runs: a CPU with AVX2 and FMA and a C compiler; elsewhere :func:`available` is False.
"""

from __future__ import annotations

import torch

from .bf16_cpu_backend import AVX2_FMA, Bf16WaveNet
from .bf16_cpu_backend import available as _available
from .bf16_cpu_backend import unavailable_reason as _unavailable_reason


class Avx2WaveNet(Bf16WaveNet):
    """:class:`Bf16WaveNet` for the AVX2 build (channels padded to 16s, one block per thread)."""

    _cache = Bf16WaveNet._cache.__class__()
    variant = AVX2_FMA


def unavailable_reason() -> str | None:
    """Why the AVX2 kernel cannot run on this machine (one line), or None when it can."""
    return _unavailable_reason(AVX2_FMA)


def available(device: torch.device | None = None) -> bool:
    """Whether this backend runs here: a CPU device, AVX2 and FMA, and a kernel that builds."""
    return _available(device, AVX2_FMA)


def generate_avx2_cpu(model, codes, speaker, T: int, uniforms, opts, teacher=None, return_logits=False):
    """(B, F) codes, (B,) speakers -> (B, T) int64 classes [and (B, Q, T) logits] (see :class:`Avx2WaveNet`)."""
    return Avx2WaveNet.from_model(model).generate(codes, speaker, T, uniforms, opts, teacher, return_logits)
