"""Cached WaveNet generation with its products on AMX tiles (method ``amx-cpu``).

:mod:`.bf16_cpu_backend`'s kernel built with ``-DVQ_AMX``: the recursion, the rounding (bfloat16
product inputs and weights, float32 sums) and everything outside the products are the same C,
and only the products change instruction.  TDPBF16PS multiplies a (rows <= 16, 32) bfloat16 tile
by a (32, 16) one, 8,192 multiply-adds per instruction where VDPBF16PS does 32, and a block of
16 rows costs 2.4 to 2.8x one of 4 where ``bf16-cpu`` pays 4x (``benchmarks/cpu_kernel_layers.py``),
so the registry folds an utterance into 16 segments per CPU thread (``benchmarks/generation.py``
measures the choice).

Results differ from ``bf16-cpu``'s by float32 summation order only (the tiles sum 32 inputs at a
time); ``tests/test_generation_bf16_cpu.py`` runs its checks on both.

Where it runs: a CPU with AMX_TILE, AMX_BF16 and AVX512_BF16, a C compiler, and a Linux kernel
that grants the process AMX tile state (``arch_prctl(ARCH_REQ_XCOMP_PERM)``, Linux 5.16 and
later).  Before the first tile use in this process a child process multiplies known tiles
(``vq_amx_probe``), so a machine that advertises AMX but faults on it falls back instead of
dying.  Elsewhere :func:`available` is False and the CPU default is the next of
:func:`.registry.default_method`'s order (``bf16-cpu``, ``avx2-cpu``, ...).
"""

from __future__ import annotations

import torch

from .bf16_cpu_backend import AMX_BF16, Bf16WaveNet
from .bf16_cpu_backend import available as _available
from .bf16_cpu_backend import unavailable_reason as _unavailable_reason


class AmxWaveNet(Bf16WaveNet):
    """:class:`Bf16WaveNet` for the AMX build: channels padded to 32s, blocks of at most 16 rows."""

    _cache = Bf16WaveNet._cache.__class__()
    variant = AMX_BF16


def unavailable_reason() -> str | None:
    """Why the AMX kernel cannot run on this machine (one line), or None when it can."""
    return _unavailable_reason(AMX_BF16)


def available(device: torch.device | None = None) -> bool:
    """Whether this backend runs here: a CPU device, AMX and AVX512_BF16, a kernel that builds and tile state."""
    return _available(device, AMX_BF16)


def generate_amx_cpu(model, codes, speaker, T: int, uniforms, opts, teacher=None, return_logits=False):
    """(B, F) codes, (B,) speakers -> (B, T) int64 classes [and (B, Q, T) logits] (see :class:`AmxWaveNet`)."""
    return AmxWaveNet.from_model(model).generate(codes, speaker, T, uniforms, opts, teacher, return_logits)
