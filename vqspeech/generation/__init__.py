"""WaveNet sample generation from codes and a speaker, with interchangeable backends.

Layout, bottom up: :mod:`.sampling` (seeded uniforms, inverse-CDF draw), :mod:`.step_weights`
(the layer-step weight layout every backend reads), one module per backend (:mod:`.reference`,
:mod:`.naive`, :mod:`.numba_backend`, :mod:`.numba_gemm_backend`, :mod:`.bf16_cpu_backend`,
:mod:`.amx_cpu_backend`, :mod:`.cuda_graph`, :mod:`.triton_backend`) and
:mod:`.registry`, which names them for the CLI, the benchmark and the tests.
"""

from __future__ import annotations

import torch

from ..audio import mulaw_decode
from .registry import ALIASES, BACKENDS, METHODS, default_method, get_backend
from .sampling import SamplingOptions, pick

__all__ = ["ALIASES", "BACKENDS", "METHODS", "SamplingOptions", "default_method", "generate", "generate_classes",
           "get_backend", "pick"]


@torch.no_grad()
def generate_classes(model, codes: torch.Tensor, speaker: torch.Tensor, num_samples: int | None = None,
                     opts: SamplingOptions | None = None, method: str = "numba",
                     teacher: torch.Tensor | None = None, return_logits: bool = False):
    """Generate mu-law classes.

    Args:
        codes: (B, F) code indices.  speaker: (B,) speaker indices.
        num_samples: samples per element (default F * hop).
        method: a name in :data:`BACKENDS` (or an alias).
        teacher: (B, T) classes fed back instead of the samples (testing; backends with teacher_forcing).
    Returns:
        (B, T) int64 classes, and (B, Q, T) logits when ``return_logits`` (the same backends).
    """
    opts = opts or SamplingOptions()
    opts.check()
    T = num_samples or codes.shape[1] * model.hop
    if T > codes.shape[1] * model.hop:
        raise ValueError(f"num_samples {T} exceeds the {codes.shape[1]} frames of codes")
    backend = get_backend(method)
    uniforms = opts.uniforms(codes.shape[0], T)
    run = backend.load()
    if teacher is not None or return_logits:
        if not backend.teacher_forcing:
            able = ", ".join(name for name, b in BACKENDS.items() if b.teacher_forcing)
            raise ValueError(f"teacher forcing and logits are only available from the methods {able}")
        return run(model, codes, speaker, T, uniforms, opts, teacher=teacher, return_logits=return_logits)
    return run(model, codes, speaker, T, uniforms, opts)


def generate(model, codes: torch.Tensor, speaker: torch.Tensor, num_samples: int | None = None,
             opts: SamplingOptions | None = None, method: str = "numba") -> torch.Tensor:
    """(B, F) codes, (B,) speakers -> (B, T) float waveform in [-1, 1]."""
    classes = generate_classes(model, codes, speaker, num_samples, opts, method)
    return mulaw_decode(classes, model.decoder.cfg.quantization_channels)
