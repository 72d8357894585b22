"""Cached WaveNet generation compiled with numba: the fast CPU path.

The per-sample recursion of :func:`vqspeech.generation.incremental_step` costs ~10 tiny
torch operations per layer; at a few microseconds of dispatch each, framework overhead
dominates the arithmetic for the small matrices of a WaveNet.  Here the whole loop over
samples, layers and channels is one compiled function.  Matrix-vector products are
written as column updates (``h += W[:, j] * x[j]``), which the compiler vectorises
without reordering sums, so results stay within float32 rounding of the reference.
Independent batch elements (folded segments of one utterance) run on parallel threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from .models import VQVAE


@numba.njit(cache=True, nogil=True)
def _sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


@numba.njit(cache=True, nogil=True)
def _generate_one(b, out, embed, w_cat, b_conv, w_res, b_res, w_skip, b_skip, w1, b1, w2, b2,
                  cond, dilations, offsets, hop, T, uniforms, inv_temp, use_argmax, first_class):
    L = dilations.shape[0]
    R = embed.shape[1]
    G2 = b_conv.shape[1]
    G = G2 // 2
    S = b_skip.shape[1]
    Q = b2.shape[0]
    queue = np.zeros((offsets[L], R), dtype=np.float32)
    x = np.empty(R, dtype=np.float32)
    h = np.empty(G2, dtype=np.float32)
    z = np.empty(G, dtype=np.float32)
    skip = np.empty(S, dtype=np.float32)
    o1 = np.empty(S, dtype=np.float32)
    logits = np.empty(Q, dtype=np.float32)
    scale = np.float32(math.sqrt(0.5))
    prev = first_class
    for t in range(T):
        frame = t // hop
        x[:] = embed[prev]
        skip[:] = 0.0
        for l in range(L):
            slot = offsets[l] + t % dilations[l]
            c = cond[l, b, frame]
            for i in range(G2):
                h[i] = b_conv[l, i] + c[i]
            # taps: rows 0..R-1 of w_cat see the past input (t - d), rows R..2R-1 the current one
            for j in range(R):
                pj = queue[slot, j]
                xj = x[j]
                for i in range(G2):
                    h[i] += w_cat[l, j, i] * pj + w_cat[l, R + j, i] * xj
            queue[slot, :] = x
            for i in range(G):
                z[i] = math.tanh(h[i]) * _sigmoid(h[G + i])
            for i in range(S):
                skip[i] += b_skip[l, i]
            for j in range(G):
                zj = z[j]
                for i in range(S):
                    skip[i] += w_skip[l, j, i] * zj
            if l < L - 1:
                for i in range(R):
                    h[i] = b_res[l, i]
                for j in range(G):
                    zj = z[j]
                    for i in range(R):
                        h[i] += w_res[l, j, i] * zj
                for i in range(R):
                    x[i] = (x[i] + h[i]) * scale
        for i in range(S):
            o1[i] = b1[i]
        for j in range(S):
            sj = max(skip[j], 0.0)
            for i in range(S):
                o1[i] += w1[j, i] * sj
        for i in range(Q):
            logits[i] = b2[i]
        for j in range(S):
            oj = max(o1[j], 0.0)
            for i in range(Q):
                logits[i] += w2[j, i] * oj
        if use_argmax:
            best = 0
            for i in range(1, Q):
                if logits[i] > logits[best]:
                    best = i
            prev = best
        else:
            m = logits.max()
            total = 0.0
            for i in range(Q):
                total += math.exp((np.float64(logits[i]) - m) * inv_temp)
            target = uniforms[b, t] * total
            acc = 0.0
            prev = Q - 1
            for i in range(Q):
                acc += math.exp((np.float64(logits[i]) - m) * inv_temp)
                if acc > target:
                    prev = i
                    break
        out[b, t] = prev


@numba.njit(cache=True, parallel=True)
def _generate_batch(out, embed, w_cat, b_conv, w_res, b_res, w_skip, b_skip, w1, b1, w2, b2,
                    cond, dilations, offsets, hop, T, uniforms, inv_temp, use_argmax, first_class):
    for b in numba.prange(out.shape[0]):
        _generate_one(b, out, embed, w_cat, b_conv, w_res, b_res, w_skip, b_skip, w1, b1, w2, b2,
                      cond, dilations, offsets, hop, T, uniforms, inv_temp, use_argmax, first_class)


class FastWaveNet:
    """The decoder's weights as contiguous float32 arrays laid out for :func:`_generate_one`."""

    def __init__(self, model: VQVAE):
        wn = model.decoder
        self.model = model
        f = lambda t: np.ascontiguousarray(t.detach().cpu().float().numpy())  # noqa: E731
        layers = list(wn.layers)
        R, G = wn.cfg.residual_channels, wn.cfg.gate_channels
        self.embed = f(wn.embed.weight)                                            # (Q, R)
        # conv weight (2G, R, 2) -> (2R, 2G): [past tap; current tap], transposed for column updates
        self.w_cat = np.stack([np.concatenate([f(l.conv.weight[:, :, 0]).T, f(l.conv.weight[:, :, 1]).T]) for l in layers])
        self.b_conv = np.stack([f(l.conv.bias) for l in layers])                  # (L, 2G)
        zeros_res = np.zeros((G, R), np.float32)
        self.w_res = np.stack([f(l.res.weight[:, :, 0]).T if l.res is not None else zeros_res for l in layers])
        self.b_res = np.stack([f(l.res.bias) if l.res is not None else np.zeros(R, np.float32) for l in layers])
        self.w_skip = np.stack([f(l.skip.weight[:, :, 0]).T for l in layers])     # (L, G, S)
        self.b_skip = np.stack([f(l.skip.bias) for l in layers])                  # (L, S)
        self.w1, self.b1 = np.ascontiguousarray(f(wn.out1.weight[:, :, 0]).T), f(wn.out1.bias)
        self.w2, self.b2 = np.ascontiguousarray(f(wn.out2.weight[:, :, 0]).T), f(wn.out2.bias)
        self.dilations = np.array([l.dilation for l in layers], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.dilations)]).astype(np.int64)
        self.first_class = wn.cfg.quantization_channels // 2

    _cache: dict[int, tuple[int, "FastWaveNet"]] = {}

    @classmethod
    def from_model(cls, model: VQVAE) -> "FastWaveNet":
        """Reuse the converted weights while the model's parameters are unchanged."""
        version = sum(p._version for p in model.decoder.parameters())
        hit = cls._cache.get(id(model))
        if hit is None or hit[0] != version or hit[1].model is not model:
            hit = (version, cls(model))
            cls._cache[id(model)] = hit
        return hit[1]

    def generate(self, codes: torch.Tensor, speaker: torch.Tensor, T: int, uniforms: torch.Tensor,
                 opts) -> torch.Tensor:
        """(B, F) codes, (B,) speakers -> (B, T) int64 classes."""
        with torch.no_grad():
            conds = self.model.codes_to_conditioning(codes, speaker)  # L x (B, 2G, F)
            cond = np.ascontiguousarray(torch.stack(conds).transpose(2, 3).cpu().float().numpy())  # (L, B, F, 2G)
        out = np.empty((codes.shape[0], T), dtype=np.int64)
        inv_temp = 1.0 / opts.temperature if not opts.argmax else 1.0
        _generate_batch(out, self.embed, self.w_cat, self.b_conv, self.w_res, self.b_res, self.w_skip,
                        self.b_skip, self.w1, self.b1, self.w2, self.b2, cond, self.dilations, self.offsets,
                        self.model.hop, T, np.ascontiguousarray(uniforms.numpy()), inv_temp, bool(opts.argmax),
                        self.first_class)
        return torch.from_numpy(out).to(codes.device)
