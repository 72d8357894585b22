"""Cached WaveNet generation compiled with numba: the fast CPU path (method ``numba``).

The per-sample recursion of :func:`vqspeech.generation.reference.incremental_step` costs ~10 tiny
torch operations per layer; at a few microseconds of dispatch each, framework overhead
dominates the arithmetic for the small matrices of a WaveNet.  Here the whole loop over
samples, layers and channels is one compiled function.  Matrix-vector products are
written as column updates (``h += W[:, j] * x[j]``), which the compiler vectorises
without reordering sums, and the gates use a vectorisable exp (:func:`_gates`), so results
stay within float32 rounding of the reference and give the same samples.
Independent batch elements (folded segments of one utterance) are split into one block of
elements per thread.
"""

from __future__ import annotations

import contextlib
import math
import weakref

import numba
import numpy as np
import torch

from .step_weights import StepWeights, frame_conditioning


_f32 = np.float32
# Cephes expf: exp(x) = 2^n * exp(r), n = round(x / ln 2), |r| <= ln(2) / 2, ln 2 split in two parts
_LOG2E, _LN2_HI, _LN2_LO = _f32(1.44269504088896341), _f32(0.693359375), _f32(-2.12194440e-4)
_EXP_POLY = tuple(_f32(v) for v in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                                    1.6666665459e-1, 5.0000001201e-1))


@numba.njit(cache=True, nogil=True)
def _gates(h, z, t, bits):
    """z (G,) = tanh(h[:G]) * sigmoid(h[G:]) for h (2G,); t (2G,) float32, bits (2G,) int32 scratch.

    libm's tanh and exp are scalar calls (~17 ns per unit here) that LLVM cannot vectorise;
    this is the same function from one vectorisable exp (Cephes expf polynomial, 2^n built
    in the exponent bits): 3.6 vs 16.4 ns per unit, max absolute error 1.6e-7 against float64
    (libm's: 0.8e-7), float32 rounding of the activations (``benchmarks/fast_kernels.py``).
    """
    G = z.shape[0]
    p0, p1, p2, p3, p4, p5 = _EXP_POLY
    scale = bits.view(np.float32)
    for i in range(G):
        t[i] = _f32(-2.0) * h[i]  # tanh(a) = (1 - e^-2a) / (1 + e^-2a)
        t[G + i] = -h[G + i]  # sigmoid(b) = 1 / (1 + e^-b)
    for i in range(2 * G):
        x = min(max(t[i], _f32(-87.0)), _f32(88.0))
        n = math.floor(x * _LOG2E + _f32(0.5))
        bits[i] = (np.int32(n) + np.int32(127)) << np.int32(23)
        r = x - n * _LN2_HI - n * _LN2_LO
        t[i] = (((((p0 * r + p1) * r + p2) * r + p3) * r + p4) * r + p5) * (r * r) + r + _f32(1.0)
    for i in range(2 * G):
        t[i] *= scale[i]
    for i in range(G):
        z[i] = (_f32(1.0) - t[i]) / (_f32(1.0) + t[i]) / (_f32(1.0) + t[G + i])


# Matrix-vector products as column updates (h += W[j] * v[j], j ascending), which LLVM
# vectorises over the output index without reordering any sum (about 18 G multiply-adds/s per
# core on the development machine, given C-contiguous weights).
@numba.njit(cache=True, nogil=True)
def _acc2(h, w_a, a, w_b, b):
    """h (M,) += a (K,) @ w_a (K, M) + b (K,) @ w_b (K, M)."""
    for j in range(a.shape[0]):
        aj = a[j]
        bj = b[j]
        for i in range(h.shape[0]):
            h[i] += w_a[j, i] * aj + w_b[j, i] * bj


@numba.njit(cache=True, nogil=True)
def _acc(h, w, a):
    """h (M,) += a (K,) @ w (K, M)."""
    for j in range(a.shape[0]):
        aj = a[j]
        for i in range(h.shape[0]):
            h[i] += w[j, i] * aj


@numba.njit(cache=True, nogil=True)
def _acc_relu(h, w, a):
    """h (M,) += relu(a) (K,) @ w (K, M)."""
    for j in range(a.shape[0]):
        aj = max(a[j], np.float32(0.0))
        for i in range(h.shape[0]):
            h[i] += w[j, i] * aj


@numba.njit(cache=True, nogil=True)
def _draw(logits, u, inv_temp, use_argmax, weights):
    """One class from logits (Q,) float32: argmax, or the inverse CDF at uniform ``u`` of
    softmax(logits / temperature) in float64 like the reference; weights (Q,) float64 scratch."""
    Q = logits.shape[0]
    if use_argmax:
        best = 0
        for i in range(1, Q):
            if logits[i] > logits[best]:
                best = i
        return best
    m = np.float64(logits.max())
    total = 0.0
    for i in range(Q):
        weights[i] = math.exp((np.float64(logits[i]) - m) * inv_temp)
        total += weights[i]
    target = u * total
    acc = 0.0
    for i in range(Q):
        acc += weights[i]
        if acc > target:
            return i
    return Q - 1


@numba.njit(cache=True, nogil=True)
def _generate_block(b0, b1, out, embed, w_cat, w_res, b_res, w_skip, b_skip, w1, b1_, w2, b2,
                    cond, dilations, offsets, hop, T, uniforms, inv_temp, use_argmax, first_class):
    """Generate batch elements b0..b1-1 (one thread's share of the batch) into ``out``.

    Per element every sum runs in the same order whatever the block, so the samples do not
    depend on how the batch was split.
    """
    L = dilations.shape[0]
    R = embed.shape[1]
    G2 = w_cat.shape[2]
    G = G2 // 2
    S = b_skip.shape[1]
    Q = b2.shape[0]
    N = b1 - b0
    queue = np.zeros((offsets[L], N, R), dtype=np.float32)
    x = np.empty((N, R), dtype=np.float32)
    h = np.empty((N, G2), dtype=np.float32)
    z = np.empty((N, G), dtype=np.float32)
    skip = np.empty((N, S), dtype=np.float32)
    o1 = np.empty((N, S), dtype=np.float32)
    logits = np.empty(Q, dtype=np.float32)
    weights = np.empty(Q, dtype=np.float64)
    scratch = np.empty(G2, dtype=np.float32)
    bits = np.empty(G2, dtype=np.int32)
    prev = np.full(N, first_class, dtype=np.int64)
    scale = np.float32(math.sqrt(0.5))
    for t in range(T):
        frame = t // hop
        for n in range(N):
            x[n, :] = embed[prev[n]]
        skip[:, :] = 0.0
        for l in range(L):
            slot = offsets[l] + t % dilations[l]
            for n in range(N):
                c = cond[l, b0 + n, frame]
                for i in range(G2):
                    h[n, i] = c[i]  # the conv bias is folded into the conditioning
            # taps: rows 0..R-1 of w_cat see the past input (t - d), rows R..2R-1 the current one
            for n in range(N):
                _acc2(h[n], w_cat[l, :R], queue[slot, n], w_cat[l, R:], x[n])
            queue[slot, :, :] = x
            for n in range(N):
                _gates(h[n], z[n], scratch, bits)
                for i in range(S):
                    skip[n, i] += b_skip[l, i]
            for n in range(N):
                _acc(skip[n], w_skip[l], z[n])
            if l < L - 1:
                for n in range(N):
                    for i in range(R):
                        h[n, i] = b_res[l, i]
                for n in range(N):
                    _acc(h[n, :R], w_res[l], z[n])
                for n in range(N):
                    for i in range(R):
                        x[n, i] = (x[n, i] + h[n, i]) * scale
        for n in range(N):
            for i in range(S):
                o1[n, i] = b1_[i]
        for n in range(N):
            _acc_relu(o1[n], w1, skip[n])
        for n in range(N):
            for i in range(Q):
                logits[i] = b2[i]
            _acc_relu(logits, w2, o1[n])
            prev[n] = _draw(logits, uniforms[b0 + n, t], inv_temp, use_argmax, weights)
            out[b0 + n, t] = prev[n]


@contextlib.contextmanager
def torch_threads_kept():
    """Run a numba ``parallel=True`` function without changing torch's thread count.

    numba's OpenMP threading layer and torch share one OpenMP runtime, and the layer's first
    parallel launch in a process sets that runtime's thread count to numba's (all cores): torch
    ops after it ran with 2 threads where the process had asked for 1 (``OMP_NUM_THREADS`` or
    ``torch.set_num_threads``), so a training whose audio samples were generated mid-run, or a
    test after a conversion, changed speed and float sums.  The layer starts on numba's first
    threading call, ``numba.get_num_threads()`` included.  Puts torch's count back."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


@numba.njit(cache=True, parallel=True)
def _generate_batch(out, bounds, embed, w_cat, w_res, b_res, w_skip, b_skip, w1, b1, w2, b2,
                    cond, dilations, offsets, hop, T, uniforms, inv_temp, use_argmax, first_class):
    """One thread per block of batch elements: ``bounds`` (blocks + 1,) are the block edges."""
    for k in numba.prange(bounds.shape[0] - 1):
        _generate_block(bounds[k], bounds[k + 1], out, embed, w_cat, w_res, b_res, w_skip, b_skip,
                        w1, b1, w2, b2, cond, dilations, offsets, hop, T, uniforms, inv_temp, use_argmax,
                        first_class)


class NumbaWaveNet:
    """The decoder's :class:`StepWeights` as contiguous float32 arrays laid out for :func:`_generate_block`."""

    def __init__(self, model):
        self._model = weakref.ref(model)
        # Every array must be C-contiguous: numba compiles strided ("A" layout) arrays without
        # vectorising.  A strided w_cat once made the whole generator ten times slower.
        w = StepWeights.from_decoder(model.decoder).numpy()
        self.embed = w["embed"]                                                  # (Q, R)
        self.w_cat = np.ascontiguousarray(np.concatenate([w["w_past"], w["w_cur"]], axis=1))  # (L, 2R, 2G)
        self.w_res, self.b_res = w["w_res"], w["b_res"]                          # (L, G, R), (L, R)
        self.w_skip, self.b_skip = w["w_skip"], w["b_skip"]                      # (L, G, S), (L, S)
        self.w1, self.b1, self.w2, self.b2 = w["w1"], w["b1"], w["w2"], w["b2"]
        self.dilations = w["dilations"]
        self.offsets = np.concatenate([[0], np.cumsum(self.dilations)]).astype(np.int64)
        self.first_class = model.decoder.cfg.quantization_channels // 2
        self.b_conv = torch.from_numpy(w["b_conv"])                             # (L, 2G)

    # Converted weights per live model; an entry goes when its model is garbage-collected
    # (the NumbaWaveNet holds only a weak reference back to the model).
    _cache: "weakref.WeakKeyDictionary[object, tuple[int, NumbaWaveNet]]" = weakref.WeakKeyDictionary()

    @property
    def model(self):
        model = self._model()
        if model is None:
            raise RuntimeError("the model these weights came from no longer exists")
        return model

    @classmethod
    def from_model(cls, model) -> "NumbaWaveNet":
        """Reuse the converted weights while the model's parameters are unchanged."""
        version = sum(p._version for p in model.decoder.parameters())
        hit = cls._cache.get(model)
        if hit is None or hit[0] != version:
            hit = (version, cls(model))
            cls._cache[model] = hit
        return hit[1]

    def generate(self, codes: torch.Tensor, speaker: torch.Tensor, T: int, uniforms: torch.Tensor,
                 opts) -> torch.Tensor:
        """(B, F) codes, (B,) speakers -> (B, T) int64 classes."""
        cond = frame_conditioning(self.model, codes, speaker, self.b_conv).cpu().numpy()  # (L, B, F, 2G)
        out = np.empty((codes.shape[0], T), dtype=np.int64)
        inv_temp = 1.0 / opts.temperature if not opts.argmax else 1.0
        B = codes.shape[0]
        with torch_threads_kept():  # numba's first threading call (get_num_threads too) would change torch's
            blocks = max(1, min(B, numba.get_num_threads()))
            bounds = np.linspace(0, B, blocks + 1).round().astype(np.int64)
            _generate_batch(out, bounds, self.embed, self.w_cat, self.w_res, self.b_res, self.w_skip,
                            self.b_skip, self.w1, self.b1, self.w2, self.b2, cond, self.dilations, self.offsets,
                            self.model.hop, T, np.ascontiguousarray(uniforms.numpy()), inv_temp, bool(opts.argmax),
                            self.first_class)
        return torch.from_numpy(out).to(codes.device)


def generate_numba(model, codes, speaker, T: int, uniforms, opts) -> torch.Tensor:
    """(B, F) codes, (B,) speakers -> (B, T) int64 classes (see :class:`NumbaWaveNet`)."""
    return NumbaWaveNet.from_model(model).generate(codes, speaker, T, uniforms, opts)
