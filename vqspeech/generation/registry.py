"""The generation backends by name: what the CLI offers, the benchmark times and the tests check.

Every backend has one signature::

    run(model, codes (B, F), speaker (B,), T, uniforms (B, T) float64, opts) -> (B, T) int64 classes

and implements the cached recursion of :mod:`.reference` with its inverse-CDF sampling. For a
WaveNet vocoder (:mod:`vqspeech.wavenet_vocoder`) the "codes" are (B, F, n_mels) log-mel frames:
backends only hand them to ``model.codes_to_conditioning`` and read F from ``shape[1]``.
Modules are imported when a backend is first used, so numba and triton load only on demand.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Backend:
    name: str
    module: str            # vqspeech.generation.<module>
    function: str
    devices: tuple         # device types it runs on
    description: str
    fold_batch: int = 16   # default segments per utterance when folding
    fold_per_thread: int = 0  # if set: at least this many segments per CPU thread (torch's count)
    min_core_factor: float = 4  # a folded segment keeps >= this x the warm-up as its own (conversion.plan_folds)
    exact: bool = True     # the reference's samples for the same seed (else: tested to a tolerance)
    teacher_forcing: bool = False  # takes teacher= and return_logits= (testing)
    probed: bool = False   # where it runs is decided by its module's available(device), not by devices alone

    def default_fold(self) -> int:
        """Segments per utterance when folding and no --max-batch is given."""
        if self.fold_per_thread:
            return max(self.fold_batch, self.fold_per_thread * torch.get_num_threads())
        return self.fold_batch

    def load(self):
        return getattr(importlib.import_module(f"{__package__}.{self.module}"), self.function)

    def runs_on(self, device: torch.device) -> bool:
        if self.probed:  # triton: CUDA or Triton's interpreter; the C kernels: CPU flags and a compiler
            return importlib.import_module(f"{__package__}.{self.module}").available(device)
        return device.type in self.devices

    def unavailable_reason(self, device: torch.device) -> str | None:
        """None where it runs on ``device``; else why not: on one of its device types, a probed
        backend's module says what is missing (its unavailable_reason()), else the devices it needs."""
        if self.runs_on(device):
            return None
        if self.probed and device.type in self.devices:
            reason = importlib.import_module(f"{__package__}.{self.module}").unavailable_reason()
            if reason:
                return reason
        return self._needs_device()

    def _needs_device(self) -> str:
        return f"needs --device {'/'.join(self.devices)}"

    def unavailable_message(self, device: torch.device) -> str | None:
        """None where it runs on ``device``; else the one-line --method error saying why."""
        reason = self.unavailable_reason(device)
        if reason is None:
            return None
        return f"--method {self.name}{' ' if reason == self._needs_device() else ': '}{reason}"


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("numba", "numba_backend", "generate_numba", ("cpu",),
            "cached step compiled with numba, batch elements in parallel threads (exact on CPU)"),
    Backend("numba-gemm", "numba_gemm_backend", "generate_numba_gemm", ("cpu",),
            "numba step with each layer's products as one BLAS matrix product per thread (float32, BLAS sum "
            "order; the CPU default on an AVX-512 CPU where no C kernel builds)", fold_batch=8, fold_per_thread=4,
            exact=False),
    Backend("bf16-cpu", "bf16_cpu_backend", "generate_bf16_cpu", ("cpu",),
            "the cached step in C with AVX512_BF16 dot products, built on first use (bf16 products, float32 sums; "
            "CPU default where it runs and amx-cpu does not)", fold_batch=8, fold_per_thread=4, exact=False,
            teacher_forcing=True, probed=True),
    Backend("amx-cpu", "amx_cpu_backend", "generate_amx_cpu", ("cpu",),
            "bf16-cpu's kernel with its products on AMX tiles (bf16 products, float32 sums; CPU default where it "
            "runs)", fold_batch=32, fold_per_thread=16, exact=False, teacher_forcing=True, probed=True),
    Backend("avx2-cpu", "avx2_cpu_backend", "generate_avx2_cpu", ("cpu",),
            "bf16-cpu's kernel for CPUs with AVX2 and FMA: bf16 weights widened to float32 in registers (bf16 "
            "products, float32 sums; CPU default where neither bf16-cpu nor amx-cpu runs)", fold_batch=8,
            fold_per_thread=4, exact=False, teacher_forcing=True, probed=True),
    Backend("reference", "reference", "generate_reference", ("cpu", "cuda"),
            "cached step in torch ops, the reference the others are checked against", teacher_forcing=True),
    Backend("cuda-graph", "cuda_graph", "generate_cuda_graph", ("cuda",),
            "the reference step captured once as a CUDA graph, replayed per sample", fold_batch=64,
            min_core_factor=1),
    Backend("triton", "triton_backend", "generate_triton", ("cuda",),
            "every sample, layer and draw in one fused Triton kernel, bf16 products (CUDA default)", fold_batch=512,
            min_core_factor=0, exact=False, teacher_forcing=True, probed=True),
    Backend("triton-tf32", "triton_backend", "generate_triton_tf32", ("cuda",),
            "the fused Triton kernel with TF32 products (logits closer to float32, 1.6x slower)", fold_batch=512,
            min_core_factor=0, exact=False, teacher_forcing=True, probed=True),
    Backend("naive", "naive", "generate_naive", ("cpu", "cuda"),
            "recompute the whole prefix per sample (baseline)"),
    Backend("naive-window", "naive", "generate_naive_window", ("cpu", "cuda"),
            "recompute the receptive field per sample (baseline)"),
)}

# Old names still accepted on the command line.
ALIASES = {"fast": "numba"}
METHODS = tuple(BACKENDS) + tuple(ALIASES)


def get_backend(name: str) -> Backend:
    name = ALIASES.get(name, name)
    if name not in BACKENDS:
        raise ValueError(f"unknown generation method {name!r}; choose from {', '.join(BACKENDS)}")
    return BACKENDS[name]


def default_method(device: torch.device) -> str:
    """The fastest backend that runs on ``device``: triton on CUDA when importable, else cuda-graph;
    on the CPU the C kernels where they build (amx-cpu where the CPU has AMX and the OS grants its
    tiles, else bf16-cpu where it has AVX512_BF16, else avx2-cpu where it has AVX2 and FMA; bf16-cpu
    is 2.6x numba-gemm and avx2-cpu 2.5x numba for the 20-layer decoder, ``benchmarks/generation.py``).
    Without one (no compiler, another architecture): numba-gemm on an AVX-512 CPU, else numba,
    because on an AVX2 CPU numba-gemm's BLAS products of a few rows ran 2.6x slower than numba's
    loops (OpenBLAS's small-matrix kernels are AVX-512 only).  The defaults match the reference to
    stated tolerances; ``numba`` and ``cuda-graph`` give its exact samples."""
    if device.type == "cuda":
        return "triton" if BACKENDS["triton"].runs_on(device) else "cuda-graph"
    kernel = next((m for m in ("amx-cpu", "bf16-cpu", "avx2-cpu") if BACKENDS[m].runs_on(device)), None)
    if kernel:
        return kernel
    from .bf16_cpu_backend import cpu_flags

    return "numba-gemm" if "avx512f" in cpu_flags() else "numba"


def choose_method(method: str | None, device: torch.device, argument: str = "--method") -> str:
    """The generation method to use on ``device``: ``method`` if it runs there (its canonical name),
    else :func:`default_method`'s when None; a one-line UserError otherwise."""
    from ..errors import UserError

    if method is None:
        return default_method(device)
    try:
        backend = get_backend(method)
    except ValueError as exc:
        raise UserError(f"{argument}: {exc}") from None
    message = backend.unavailable_message(device)
    if message:
        raise UserError(message)
    return backend.name


def method_report(device: torch.device) -> list[dict]:
    """Every backend on ``device``, in the registry's order: ``method``, ``runs`` (bool),
    ``default`` (what a command without --method uses), ``why_not`` (the --method error's reason,
    None where it runs), ``exact`` (the reference's samples for a seed), ``segments`` (its default
    folding) and ``description``.  Probed backends build or import what they need to answer."""
    default = default_method(device)
    rows = []
    for b in BACKENDS.values():
        why_not = b.unavailable_reason(device)
        rows.append({"method": b.name, "runs": why_not is None, "default": b.name == default, "why_not": why_not,
                     "exact": b.exact, "segments": b.default_fold(), "description": b.description})
    return rows


def format_method_report(rows: list[dict], device: torch.device) -> str:
    """:func:`method_report`'s rows as text: one line per method, the default marked ``*``."""
    width = max(len(r["method"]) for r in rows)
    lines = [f"generation methods on {device} (--method; * the default, 'exact': the reference's samples "
             "for a seed):"]
    for r in rows:
        mark = "*" if r["default"] else " "
        if r["runs"]:
            what = f"runs, {r['segments']} segments{', exact' if r['exact'] else ''}: {r['description']}"
        else:
            what = f"does not run here: {r['why_not']}"
        lines.append(f"{mark} {r['method']:<{width}}  {what}")
    return "\n".join(lines) + "\n"
