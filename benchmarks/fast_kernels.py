"""The two kernel-level choices inside the numba fast path, each measured against its alternative.

    python benchmarks/fast_kernels.py

1. Gates: ``tanh(a) * sigmoid(b)`` from libm scalar calls vs :func:`vqspeech.generation.numba_backend._gates`
   (one vectorisable exp), in ns per gate unit, with each one's max abs error against float64.
2. Matrix-vector products (:func:`vqspeech.generation.numba_backend._acc2`) over the 20-layer decoder's
   conv weights, C-contiguous vs the strided layout ``np.stack`` of transposed matrices gives,
   in G multiply-adds/s.
3. The ceiling the CPU backends are measured against: torch's own 2048 x 2048 matrix product in
   float32 and in bfloat16, on one thread and on every core, in G multiply-adds/s (the reason
   ``bf16-cpu`` exists: float32 cannot convert the 20-layer decoder's 10 s in 2 s on 2 cores).
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqspeech.generation.numba_backend import _acc2, _gates  # noqa: E402


@numba.njit(cache=True, nogil=True)
def _gates_libm(h, z, t, bits):
    G = z.shape[0]
    for i in range(G):
        z[i] = math.tanh(h[i]) * (1.0 / (1.0 + math.exp(-h[G + i])))


@numba.njit(cache=True)
def _repeat_gates(fn, h, z, t, bits, reps):
    for _ in range(reps):
        fn(h, z, t, bits)


@numba.njit(cache=True)
def _repeat_conv(w_cat, queue, x, h, reps):
    R = x.shape[0]
    for r in range(reps):
        for l in range(w_cat.shape[0]):
            _acc2(h, w_cat[l, :R], queue[r % queue.shape[0]], w_cat[l, R:], x)


def bench_gates(G: int = 128, reps: int = 100_000) -> None:
    rng = np.random.default_rng(0)
    h = (3 * rng.standard_normal(2 * G)).astype(np.float32)
    z, t, bits = np.empty(G, np.float32), np.empty(2 * G, np.float32), np.empty(2 * G, np.int32)
    grid = np.linspace(-40, 40, 2 * G * 2000).astype(np.float32).reshape(-1, 2 * G)
    print("| gates | ns per unit | max abs error vs float64 |\n|---|---:|---:|")
    for name, fn in (("libm tanh/exp (scalar calls)", _gates_libm), ("vqspeech _gates (vectorisable exp)", _gates)):
        _repeat_gates(fn, h, z, t, bits, 1)
        t0 = time.perf_counter()
        _repeat_gates(fn, h, z, t, bits, reps)
        ns = (time.perf_counter() - t0) / reps / G * 1e9
        err = 0.0
        for row in grid:
            fn(row, z, t, bits)
            exact = np.tanh(row[:G].astype(np.float64)) / (1 + np.exp(-row[G:].astype(np.float64)))
            err = max(err, float(np.abs(z - exact).max()))
        print(f"| {name} | {ns:.2f} | {err:.2e} |")


def bench_layout(L: int = 20, R: int = 64, G2: int = 256, reps: int = 500) -> None:
    rng = np.random.default_rng(0)
    layers = [rng.standard_normal((G2, 2 * R)).astype(np.float32) for _ in range(L)]
    strided = np.stack([w.T for w in layers])  # what np.stack of transposed matrices gives
    contiguous = np.ascontiguousarray(strided)
    queue = rng.standard_normal((8, R)).astype(np.float32)
    x = rng.standard_normal(R).astype(np.float32)
    print(f"\n| conv weights ({L} x {2 * R} x {G2}) | C-contiguous | G multiply-adds/s |\n|---|---|---:|")
    for name, w in (("np.stack of transposes", strided), ("np.ascontiguousarray", contiguous)):
        h = np.zeros(G2, np.float32)
        _repeat_conv(w, queue, x, h, 1)
        t0 = time.perf_counter()
        _repeat_conv(w, queue, x, h, reps)
        rate = reps * w.size / (time.perf_counter() - t0) / 1e9
        print(f"| {name} | {w.flags.c_contiguous} | {rate:.2f} |")


def bench_peak(n: int = 2048, repeat: int = 5) -> None:
    import torch

    threads = torch.get_num_threads()
    print(f"\n## torch {n} x {n} matrix product (the CPU's practical peak)\n")
    print("| dtype | threads | G multiply-adds/s |\n|---|---:|---:|")
    try:
        for t in sorted({1, threads}):
            torch.set_num_threads(t)
            for dtype in (torch.float32, torch.bfloat16):
                a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
                a @ b
                t0 = time.perf_counter()
                for _ in range(repeat):
                    a @ b
                rate = n ** 3 * repeat / (time.perf_counter() - t0) / 1e9
                print(f"| {str(dtype).split('.')[1]} | {t} | {rate:.1f} |")
    finally:
        torch.set_num_threads(threads)


def main() -> int:
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"numba {numba.__version__}, one thread\n")
    bench_gates()
    bench_layout()
    bench_peak()
    return 0


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    # a user error (a config or data directory that does not read, an absent device): one line, exit 2
    raise SystemExit(run_user_command(main, prog=Path(__file__).name))
