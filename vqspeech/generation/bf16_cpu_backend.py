"""Cached WaveNet generation with bfloat16 products on AVX512_BF16 CPUs (method ``bf16-cpu``).

The float32 CPU paths are bound by multiply-adds: the 20-layer 64/128/128 decoder needs 1.19 M
per sample, and float32 gives at most ~50 G/s per core here (torch's own 2048x2048 product,
``benchmarks/fast_kernels.py``), so a 10 s utterance with its folded warm-ups (229 G multiply-adds)
cannot convert in 2 s in float32 on two cores.
VDPBF16PS does 32 bfloat16 multiply-adds per instruction into float32 sums, twice FMA's 16;
:file:`bf16_cpu_kernel.c` runs the whole cached recursion of :mod:`.step_weights` (every
layer, the output layers and the draw) in C with those instructions, one thread per block of
batch elements, and ``benchmarks/generation.py`` times it beside ``numba-gemm``.

Precision: product inputs and weights are rounded to bfloat16 (8-bit mantissas) and summed in
float32; the residual stream, skip sum, gates and draw stay float32/float64.  The logits move
by ~1e-2 of their range against float32, the same rounding as the ``triton`` GPU default, so
samples follow the reference's only until a draw lands near a class boundary: ``exact=False``,
and ``tests/test_generation_bf16_cpu.py`` states the tolerance under teacher forcing.

The kernel is compiled on first use with the system C compiler into the user's cache
(``$VQSPEECH_CACHE_DIR``, else ``$XDG_CACHE_HOME/vqspeech``, else ``~/.cache/vqspeech``) and
loaded with ctypes, whose calls release the GIL.  Where the CPU lacks AVX512_BF16 or no compiler
is found, :func:`available` is False and the registry's CPU default is another method.

The same source built with ``-DVQ_AMX`` runs the products on AMX tiles instead (method
``amx-cpu``, :mod:`.amx_cpu_backend`), and built with ``-DVQ_AVX2`` it runs on any CPU with
AVX2 and FMA (method ``avx2-cpu``, :mod:`.avx2_cpu_backend`): a :class:`KernelVariant` names
each build, and :class:`Bf16WaveNet` takes the variant its subclass names.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .numba_backend import NumbaWaveNet
from .step_weights import frame_conditioning

SOURCE = Path(__file__).with_name("bf16_cpu_kernel.c")
CFLAGS = ("-O3", "-shared", "-fPIC")
AVX512_CFLAGS = ("-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-mfma")
CPU_FLAG = "avx512_bf16"


@dataclass(frozen=True)
class KernelVariant:
    """One build of :data:`SOURCE`: the method it serves, the CPU flags it needs, its instruction
    set's compiler flags (only those: code the compiler vectorises on its own must run on every
    CPU with ``cpu_flags``), the multiple its channel counts are padded to, the most batch rows
    one kernel call takes (0: any) and whether the process must ask Linux for AMX tile state first."""
    method: str
    cpu_flags: tuple
    isa_cflags: tuple = AVX512_CFLAGS
    channel_multiple: int = 16
    max_block_rows: int = 0
    requests_tiles: bool = False

    @property
    def cflags(self) -> tuple:
        return CFLAGS + self.isa_cflags


AVX512_BF16 = KernelVariant("bf16-cpu", (CPU_FLAG,))
# TDPBF16PS takes 32 inputs per tile row and at most 16 rows per tile; the kernel uses two row tiles.
AMX_BF16 = KernelVariant("amx-cpu", (CPU_FLAG, "amx_tile", "amx_bf16"),
                         AVX512_CFLAGS + ("-mamx-tile", "-mamx-bf16", "-DVQ_AMX"),
                         channel_multiple=32, max_block_rows=32, requests_tiles=True)
# No bfloat16 instructions: the kernel widens the packed weights to float32 in registers (FMA products).
AVX2_FMA = KernelVariant("avx2-cpu", ("avx2", "fma"), ("-mavx2", "-mfma", "-DVQ_AVX2"))


class KernelUnavailable(RuntimeError):
    """This machine cannot build or run the bfloat16 kernel (the message says why)."""


def cpu_flags() -> frozenset:
    """The CPU's feature flags (Linux's /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    return next((frozenset(line.split(":", 1)[1].split()) for line in text.splitlines() if line.startswith("flags")),
                frozenset())


def cpu_has_bf16_dot() -> bool:
    """Whether the CPU advertises AVX512_BF16 (Linux's /proc/cpuinfo; False elsewhere)."""
    return CPU_FLAG in cpu_flags()


def missing_cpu_flags(variant: KernelVariant) -> list:
    """The flags ``variant`` needs that this CPU lacks."""
    have = cpu_flags()
    return [f for f in variant.cpu_flags if f not in have]


def cache_dir() -> Path:
    if os.environ.get("VQSPEECH_CACHE_DIR"):
        return Path(os.environ["VQSPEECH_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vqspeech"


def _compiler() -> str:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    raise KernelUnavailable("the amx-cpu, bf16-cpu and avx2-cpu generators need a C compiler (cc, gcc or clang) on "
                            "PATH to build their kernel")


def build(out_dir: Path | None = None, variant: KernelVariant = AVX512_BF16) -> Path:
    """Compile the kernel (once per source, flags and compiler) -> the shared library's path.

    The library is written to a temporary name and renamed into place, so concurrent first uses
    never load a half-written file."""
    cc = _compiler()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join((cc, *variant.cflags, *version)).encode()).hexdigest()[:16]
    out_dir = Path(out_dir or cache_dir())
    lib = out_dir / f"{SOURCE.stem}-{key}.so"
    if lib.exists():
        return lib
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
    os.close(fd)
    try:
        done = subprocess.run([cc, *variant.cflags, "-o", tmp, str(SOURCE), "-lm"], capture_output=True, text=True)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["no message"])[0]
            raise KernelUnavailable(f"{cc} could not build {SOURCE.name}: {first}")
        os.replace(tmp, lib)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


PROBE_MESSAGES = {3: "the Linux kernel refused the tile state (arch_prctl ARCH_REQ_XCOMP_PERM)",
                  4: "a test product on the tiles came out wrong"}


def _probe_tiles(lib: Path) -> str | None:
    """Run the AMX build's ``vq_amx_probe`` in a child process -> None when the tiles work, else
    why not.  A CPU can advertise AMX where a hypervisor or an old kernel faults on it (SIGILL);
    the child takes that fault instead of the caller.  About 20 ms, once per process."""
    code = "import ctypes, sys; sys.exit(ctypes.CDLL(sys.argv[1]).vq_amx_probe())"
    try:
        done = subprocess.run([sys.executable, "-c", code, str(lib)], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"the probe did not run ({e})"
    if done.returncode == 0:
        return None
    if done.returncode < 0:
        return f"the probe died with signal {-done.returncode}"
    return PROBE_MESSAGES.get(done.returncode, f"the probe exited with status {done.returncode}")


@functools.lru_cache(maxsize=None)
def load_kernel(variant: KernelVariant = AVX512_BF16) -> ctypes.CDLL | KernelUnavailable:
    """The compiled kernel, built on first use, or why it cannot be had.  Both are cached, so a
    machine whose compiler fails does not run it again on every availability check."""
    missing = missing_cpu_flags(variant)
    if missing:
        return KernelUnavailable(f"the {variant.method} generator needs a CPU with {' and '.join(missing)} "
                                 "(this one has none)")
    try:
        path = build(variant=variant)
        lib = ctypes.CDLL(str(path))
    except KernelUnavailable as e:
        return e
    except OSError as e:
        return KernelUnavailable(f"the {variant.method} kernel does not build or load here: {e}")
    if variant.requests_tiles:
        problem = _probe_tiles(path)
        if problem:
            return KernelUnavailable(f"the {variant.method} generator cannot use AMX tiles here: {problem}")
        # Linux hands out AMX tile state only to a process that asks (once; every thread then has it).
        if lib.vq_amx_request() != 0:
            return KernelUnavailable(f"the {variant.method} generator needs AMX tile state, which the kernel "
                                     "refused this process (arch_prctl ARCH_REQ_XCOMP_PERM)")
    f = lib.vq_bf16_generate_block
    i, p, fl = ctypes.c_int, ctypes.c_void_p, ctypes.c_float
    f.argtypes = [i] * 12 + [p] * 16 + [fl, i, i, p]
    f.restype = i
    lib.vq_bf16_scratch_floats.argtypes = [i] * 5 + [ctypes.c_long]
    lib.vq_bf16_scratch_floats.restype = ctypes.c_long
    return lib


def library(variant: KernelVariant = AVX512_BF16) -> ctypes.CDLL:
    """The compiled kernel; raises :class:`KernelUnavailable` saying why it cannot run here."""
    kernel = load_kernel(variant)
    if isinstance(kernel, KernelUnavailable):
        raise KernelUnavailable(str(kernel))
    return kernel


def unavailable_reason(variant: KernelVariant = AVX512_BF16) -> str | None:
    """Why the kernel cannot run on this machine (one line), or None when it can."""
    kernel = load_kernel(variant)
    return str(kernel) if isinstance(kernel, KernelUnavailable) else None


def available(device: torch.device | None = None, variant: KernelVariant = AVX512_BF16) -> bool:
    """Whether this backend runs here: a CPU device, the variant's CPU flags and a kernel that builds."""
    if device is not None and torch.device(device).type != "cpu":
        return False
    return unavailable_reason(variant) is None


TILE = 64  # output columns per packed tile: four 16-float accumulators per row in the kernel


def pack_bf16(w: np.ndarray) -> np.ndarray:
    """(..., K, M) float32 -> (..., K * M) bfloat16 bits (uint16) in VDPBF16PS's layout: columns
    in tiles of 64 (the last one narrower), each tile (K/2, width, 2), row pairs interleaved, so
    one 64-byte load holds 16 output columns of two consecutive inputs and each tile is one
    contiguous stream.  Tile j starts at element 64 j K."""
    *lead, K, M = w.shape
    if K % 2 or M % 16:
        raise ValueError(f"bf16 packing needs an even number of input rows and columns in 16s, got {K}x{M}")
    t = torch.from_numpy(np.ascontiguousarray(w)).to(torch.bfloat16).reshape(*lead, K // 2, 2, M)
    tiles = [t[..., m:m + TILE].transpose(-1, -2).reshape(*lead, -1) for m in range(0, M, TILE)]
    return np.ascontiguousarray(torch.cat(tiles, dim=-1).contiguous().view(torch.int16).numpy().view(np.uint16))


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _pad(a: np.ndarray, shape: tuple, fill: float = 0.0) -> np.ndarray:
    """``a`` in the leading corner of a C-contiguous float32 array of ``shape`` filled with ``fill``."""
    out = np.full(shape, fill, dtype=np.float32)
    out[tuple(slice(0, n) for n in a.shape)] = a
    return out


def _pad_halves(a: np.ndarray, axis: int, padded: int) -> np.ndarray:
    """Pad each half of ``axis`` to ``padded``: [first | 0 | second | 0]."""
    first, second = np.split(a, 2, axis=axis)
    shape = list(a.shape)
    shape[axis] = padded
    return np.concatenate([_pad(first, tuple(shape)), _pad(second, tuple(shape))], axis=axis)


class Bf16WaveNet(NumbaWaveNet):
    """:class:`NumbaWaveNet`'s arrays with every product's weights packed as bfloat16.

    The kernel works in 16-channel vectors (AMX: 32-input tile rows), so every channel count is
    padded up to a multiple of 16 (32) with zeros, which changes nothing: a padded input channel
    meets zero weights, a padded gate has zero pre-activation so tanh(0) * sigmoid(0) = 0, padded
    skip and hidden units stay at relu(0) = 0, and a padded output class gets the logit -1e30
    (weight 0 in the softmax, never the argmax)."""

    _cache = NumbaWaveNet._cache.__class__()
    variant = AVX512_BF16

    def __init__(self, model):
        super().__init__(model)
        L, R2, G2 = self.w_cat.shape
        R, G, S, Q = R2 // 2, G2 // 2, self.w_skip.shape[2], self.b2.shape[0]
        self.sizes = (R, G, S, Q)
        Rp, Gp, Sp = (_round_up(n, self.variant.channel_multiple) for n in self.sizes[:3])
        Qp = _round_up(Q, 16)  # the classes are only ever output columns
        self.padded = (Rp, Gp, Sp, Qp)
        w_cat = _pad_halves(_pad_halves(self.w_cat, 1, Rp), 2, Gp)                  # (L, 2Rp, 2Gp)
        w_out = np.concatenate([_pad(self.w_skip, (L, Gp, Sp)), _pad(self.w_res, (L, Gp, Rp))], axis=2)
        self.p_cat = pack_bf16(w_cat)                                                      # (L, 2Rp x 2Gp)
        self.p_out = pack_bf16(w_out)                                                      # (L, Gp x (Sp+Rp))
        self.p1 = pack_bf16(_pad(self.w1, (Sp, Sp)))                                       # (Sp x Sp)
        self.p2 = pack_bf16(_pad(self.w2, (Sp, Qp)))                                       # (Sp x Qp)
        self.embed_p = _pad(self.embed, (Qp, Rp))
        self.b_res_p = _pad(self.b_res, (L, Rp))
        self.skip0_p = _pad(self.b_skip.sum(0, dtype=np.float32), (Sp,))
        self.b1_p = _pad(self.b1, (Sp,))
        self.b2_p = _pad(self.b2, (Qp,), fill=-1e30)

    def _cond(self, codes: torch.Tensor, speaker: torch.Tensor) -> np.ndarray:
        """(L, B, F, 2Gp) float32 gate biases, each half padded with zeros."""
        cond = frame_conditioning(self.model, codes, speaker, self.b_conv).cpu().numpy()
        G, Gp = self.sizes[1], self.padded[1]
        return np.ascontiguousarray(cond if G == Gp else _pad_halves(cond, 3, Gp))

    def generate(self, codes: torch.Tensor, speaker: torch.Tensor, T: int, uniforms: torch.Tensor, opts,
                 teacher: torch.Tensor | None = None, return_logits: bool = False, blocks: int | None = None):
        """(B, F) codes, (B,) speakers -> (B, T) int64 classes [and (B, Q, T) logits].

        ``teacher`` (B, T) classes are fed back instead of the samples (testing); ``blocks``:
        threads, each running blocks of elements in turn (default: torch's thread count); a block
        is the thread's share of the batch, or for AMX tiles split into pieces of at most 32 rows."""
        # The kernel trusts its sizes: every frame, uniform and teacher class it reads must exist.
        B, F = codes.shape[:2]
        if T > F * self.model.hop:
            raise ValueError(f"{T} samples exceed the {F} frames of codes")
        if tuple(uniforms.shape) != (B, T) or (teacher is not None and tuple(teacher.shape) != (B, T)):
            raise ValueError(f"uniforms and teacher classes must be ({B}, {T})")
        lib = library(self.variant)
        cond = self._cond(codes, speaker)
        L = cond.shape[0]
        Q = self.sizes[3]
        Rp, Gp, Sp, Qp = self.padded
        out = np.empty((B, T), dtype=np.int64)
        logits = np.empty((B, Qp, T), dtype=np.float32) if return_logits else None
        forced = np.ascontiguousarray(teacher.cpu().numpy(), dtype=np.int64) if teacher is not None else None
        if forced is not None and (forced.min(initial=0) < 0 or forced.max(initial=0) >= Q):
            raise ValueError(f"teacher classes must lie in [0, {Q})")
        u = np.ascontiguousarray(uniforms.numpy(), dtype=np.float64)  # no copy: already float64
        threads = max(1, min(B, blocks or torch.get_num_threads()))
        # Blocks in whole rounds over the threads, so each thread gets the same rows to run.
        per_thread = -(-B // threads)
        rounds = -(-per_thread // self.variant.max_block_rows) if self.variant.max_block_rows else 1
        blocks = min(B, threads * rounds)
        bounds = np.linspace(0, B, blocks + 1).round().astype(int)
        ptr = lambda a: None if a is None else a.ctypes.data  # noqa: E731
        inv_temp = float(opts.inverse_temperature)

        def run(k: int) -> int:
            b0, n = int(bounds[k]), int(bounds[k + 1] - bounds[k])
            scratch = np.empty(lib.vq_bf16_scratch_floats(n, Rp, Gp, Sp, Qp, int(self.offsets[-1])), np.float32)
            return lib.vq_bf16_generate_block(
                b0, n, B, T, F, self.model.hop, L, Rp, Gp, Sp, Qp, Q,
                ptr(self.embed_p), ptr(self.p_cat), ptr(self.p_out), ptr(self.b_res_p), ptr(self.skip0_p),
                ptr(self.p1), ptr(self.b1_p), ptr(self.p2), ptr(self.b2_p), ptr(cond), ptr(self.dilations),
                ptr(self.offsets), ptr(u), ptr(forced), ptr(out), ptr(logits),
                inv_temp, int(bool(opts.argmax)), int(self.first_class), ptr(scratch))

        if threads == 1:
            codes_ = [run(k) for k in range(blocks)]
        else:
            with ThreadPoolExecutor(threads) as pool:
                codes_ = list(pool.map(run, range(blocks)))
        if any(codes_):  # the padding above makes this unreachable; kept for a caller of the raw kernel
            raise ValueError(f"the {self.variant.method} kernel rejected the decoder's sizes")
        classes = torch.from_numpy(out).to(codes.device)
        if return_logits:
            return classes, torch.from_numpy(logits[:, :Q]).to(codes.device)
        return classes


def generate_bf16_cpu(model, codes, speaker, T: int, uniforms, opts, teacher=None, return_logits=False):
    """(B, F) codes, (B,) speakers -> (B, T) int64 classes [and (B, Q, T) logits] (see :class:`Bf16WaveNet`)."""
    return Bf16WaveNet.from_model(model).generate(codes, speaker, T, uniforms, opts, teacher, return_logits)
