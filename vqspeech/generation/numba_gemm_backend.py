"""Cached WaveNet generation with each layer's products as one matrix product per thread
(method ``numba-gemm``): the float32 CPU path for folded utterances on AVX-512 CPUs.

:mod:`.numba_backend` multiplies each batch element's vector by each weight matrix on its own,
so every weight is read from cache once per element and the products run at the speed of a
matrix-vector loop (~20 G multiply-adds/s per core).  Here a thread's block of N elements
(the folded segments of an utterance) goes through each layer as two matrix products,

    h (N, 2G) = [x_{t-d} | x_t] (N, 2R) @ w_cat (2R, 2G)          + cond[frame]
    o (N, S+R) = z (N, G) @ [w_skip | w_res] (G, S+R)             (skip and residual at once)

which numba hands to BLAS (``np.dot(a, b, out)``: scipy's OpenBLAS sgemm), and the output
layers likewise.  BLAS blocks its sums in its own order, so the logits differ from the
reference's by float32 rounding (~1e-6 of their range): a draw that falls within that distance
of a class boundary can pick the neighbouring class, and the rest of that segment then
follows another path.  ``exact=False`` in the registry; ``tests/test_generation_gemm.py``
states the tolerance and ``benchmarks/generation.py`` reports the share of identical samples.
BLAS runs single-threaded inside each numba thread (``threadpoolctl``), one block per core.

Its speed depends on the BLAS's small-matrix path: OpenBLAS has small-matrix kernels for
AVX-512 cores only, and on an AVX2 CPU (AMD Zen 3) these products of 4 rows cost more than
:mod:`.numba_backend`'s matrix-vector loops (the 20-layer decoder's 10 s utterance: 26.1 s
against 10.0 s, ``benchmarks/generation.py``), so the registry falls back to ``numba`` there.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from .numba_backend import NumbaWaveNet, _draw, _gates, torch_threads_kept
from .step_weights import frame_conditioning


@numba.njit(cache=True, nogil=True)
def _generate_block_gemm(b0, b1, out, embed, w_cat, w_out, b_res, skip0, w1, b1_, w2, b2,
                         cond, dilations, offsets, hop, T, uniforms, inv_temp, use_argmax, first_class):
    """Generate batch elements b0..b1-1 into ``out``.

    w_cat (L, 2R, 2G): rows 0..R-1 see the past input, R..2R-1 the current one; w_out (L, G, S+R):
    skip then residual columns; skip0 (S,) the sum of every layer's skip bias; cond (L, B, F, 2G).
    """
    L = dilations.shape[0]
    R = embed.shape[1]
    G2 = w_cat.shape[2]
    G = G2 // 2
    S = skip0.shape[0]
    Q = b2.shape[0]
    N = b1 - b0
    queue = np.zeros((offsets[L], N, R), dtype=np.float32)
    xin = np.empty((N, 2 * R), dtype=np.float32)  # [past | current] input of the layer
    h = np.empty((N, G2), dtype=np.float32)
    z = np.empty((N, G), dtype=np.float32)
    o = np.empty((N, S + R), dtype=np.float32)
    skip = np.empty((N, S), dtype=np.float32)
    o1 = np.empty((N, S), dtype=np.float32)
    logits = np.empty((N, Q), dtype=np.float32)
    weights = np.empty(Q, dtype=np.float64)
    scratch = np.empty(G2, dtype=np.float32)
    bits = np.empty(G2, dtype=np.int32)
    prev = np.full(N, first_class, dtype=np.int64)
    scale = np.float32(math.sqrt(0.5))
    for t in range(T):
        frame = t // hop
        for n in range(N):
            xin[n, R:] = embed[prev[n]]
            skip[n, :] = skip0
        for l in range(L):
            slot = offsets[l] + t % dilations[l]
            for n in range(N):
                for i in range(R):
                    xin[n, i] = queue[slot, n, i]
                    queue[slot, n, i] = xin[n, R + i]
            np.dot(xin, w_cat[l], h)
            for n in range(N):
                c = cond[l, b0 + n, frame]  # the conv bias is folded into the conditioning
                for i in range(G2):
                    h[n, i] += c[i]
                _gates(h[n], z[n], scratch, bits)
            np.dot(z, w_out[l], o)
            for n in range(N):
                for i in range(S):
                    skip[n, i] += o[n, i]
            if l < L - 1:
                for n in range(N):
                    for i in range(R):
                        xin[n, R + i] = (xin[n, R + i] + o[n, S + i] + b_res[l, i]) * scale
        for n in range(N):
            for i in range(S):
                skip[n, i] = max(skip[n, i], np.float32(0.0))
        np.dot(skip, w1, o1)
        for n in range(N):
            for i in range(S):
                o1[n, i] = max(o1[n, i] + b1_[i], np.float32(0.0))
        np.dot(o1, w2, logits)
        for n in range(N):
            for i in range(Q):
                logits[n, i] += b2[i]
            prev[n] = _draw(logits[n], uniforms[b0 + n, t], inv_temp, use_argmax, weights)
            out[b0 + n, t] = prev[n]


@numba.njit(cache=True, parallel=True)
def _generate_batch_gemm(out, bounds, embed, w_cat, w_out, b_res, skip0, w1, b1, w2, b2,
                         cond, dilations, offsets, hop, T, uniforms, inv_temp, use_argmax, first_class):
    """One thread per block of batch elements: ``bounds`` (blocks + 1,) are the block edges."""
    for k in numba.prange(bounds.shape[0] - 1):
        _generate_block_gemm(bounds[k], bounds[k + 1], out, embed, w_cat, w_out, b_res, skip0, w1, b1, w2, b2,
                             cond, dilations, offsets, hop, T, uniforms, inv_temp, use_argmax, first_class)


class NumbaGemmWaveNet(NumbaWaveNet):
    """:class:`NumbaWaveNet`'s arrays plus the skip and residual matrices side by side."""

    _cache = NumbaWaveNet._cache.__class__()  # its own cache: an entry of the parent's would be the wrong class

    def __init__(self, model):
        super().__init__(model)
        self.w_out = np.ascontiguousarray(np.concatenate([self.w_skip, self.w_res], axis=2))  # (L, G, S+R)
        self.skip0 = np.ascontiguousarray(self.b_skip.sum(0, dtype=np.float32))              # (S,)

    def generate(self, codes: torch.Tensor, speaker: torch.Tensor, T: int, uniforms: torch.Tensor,
                 opts) -> torch.Tensor:
        """(B, F) codes, (B,) speakers -> (B, T) int64 classes."""
        cond = frame_conditioning(self.model, codes, speaker, self.b_conv).cpu().numpy()  # (L, B, F, 2G)
        B = codes.shape[0]
        out = np.empty((B, T), dtype=np.int64)
        inv_temp = 1.0 / opts.temperature if not opts.argmax else 1.0
        with threadpool_limits(1, user_api="blas"), torch_threads_kept():  # the threads are numba's, one block each
            blocks = max(1, min(B, numba.get_num_threads()))
            bounds = np.linspace(0, B, blocks + 1).round().astype(np.int64)
            _generate_batch_gemm(out, bounds, self.embed, self.w_cat, self.w_out, self.b_res, self.skip0,
                                 self.w1, self.b1, self.w2, self.b2, cond, self.dilations, self.offsets,
                                 self.model.hop, T, np.ascontiguousarray(uniforms.numpy()), inv_temp,
                                 bool(opts.argmax), self.first_class)
        return torch.from_numpy(out).to(codes.device)


def generate_numba_gemm(model, codes, speaker, T: int, uniforms, opts) -> torch.Tensor:
    """(B, F) codes, (B,) speakers -> (B, T) int64 classes (see :class:`NumbaGemmWaveNet`)."""
    return NumbaGemmWaveNet.from_model(model).generate(codes, speaker, T, uniforms, opts)
