"""Triphone-context ABX discrimination (Schatz et al. 2013; ZeroSpeech 2017-2021).

Items are phone tokens (an interval of frames) with their left and right phone as
context.  A triplet (A, B, X) has A and X of the same phone, B of another phone, all three
in the same context.  *Within* speaker: A, B, X from one speaker; *across*: A and B from
one speaker, X from another.  The triplet is an error when d(A, X) > d(B, X) (half an
error on a tie).  Errors are averaged per (context, speaker(s), phone pair), then over
those groups, as in the ZeroSpeech evaluation.

d is dynamic time warping of frame distances, divided by the path length: cosine
distance (1 - cos) for continuous features, 0/1 for discrete codes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numba
import numpy as np


@dataclass(frozen=True)
class Item:
    utt: str
    start: int      # frame index, inclusive
    end: int        # frame index, exclusive
    phone: str
    context: tuple[str, str]
    speaker: str


@numba.njit(cache=True)
def _frame_dist(a, b, i, j, cosine):
    if not cosine:
        return 0.0 if a[i, 0] == b[j, 0] else 1.0
    dot = 0.0
    na = 0.0
    nb = 0.0
    for k in range(a.shape[1]):
        dot += a[i, k] * b[j, k]
        na += a[i, k] * a[i, k]
        nb += b[j, k] * b[j, k]
    if na == 0.0 or nb == 0.0:
        return 1.0
    return 1.0 - dot / math.sqrt(na * nb)


@numba.njit(cache=True)
def dtw_distance(a, b, cosine):
    """Mean frame distance along the cheapest monotone path: (n, D), (m, D) -> float.

    For codes pass (n, 1) integer-valued arrays and ``cosine=False`` (0/1 distance).
    """
    n, m = a.shape[0], b.shape[0]
    cost = np.full((n + 1, m + 1), np.inf)
    length = np.zeros((n + 1, m + 1))
    cost[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d = _frame_dist(a, b, i - 1, j - 1, cosine)
            best = cost[i - 1, j - 1]
            bl = length[i - 1, j - 1]
            if cost[i - 1, j] < best:
                best = cost[i - 1, j]
                bl = length[i - 1, j]
            if cost[i, j - 1] < best:
                best = cost[i, j - 1]
                bl = length[i, j - 1]
            cost[i, j] = best + d
            length[i, j] = bl + 1
    return cost[n, m] / length[n, m]


def build_items(alignments: dict[str, list[tuple[int, int, str]]], utt2spk: dict[str, str],
                ignore: frozenset[str] = frozenset({"pau", "sil", "sp", "spn", "SIL", "h#"})) -> list[Item]:
    """Phone tokens with (left, right) context from per-utterance [(start frame, end frame, phone)].

    Silence tokens are not items but still serve as context (the ZeroSpeech convention
    drops them as centres).
    """
    items = []
    for utt, segs in alignments.items():
        for k, (s, e, ph) in enumerate(segs):
            if ph in ignore or e <= s or k == 0 or k == len(segs) - 1:
                continue
            items.append(Item(utt, s, e, ph, (segs[k - 1][2], segs[k + 1][2]), utt2spk[utt]))
    return items


def _cap(items: list[Item], max_per_cell: int, rng: np.random.Generator) -> list[Item]:
    cells = defaultdict(list)
    for it in items:
        cells[(it.context, it.phone, it.speaker)].append(it)
    out = []
    for key in sorted(cells):
        cell = cells[key]
        if len(cell) > max_per_cell:
            cell = [cell[i] for i in sorted(rng.choice(len(cell), max_per_cell, replace=False))]
        out.extend(cell)
    return out


@dataclass
class ABXResult:
    within: float | None   # error rate in [0, 1], None when no triplet exists
    across: float | None
    n_within: int          # number of (context, speaker, phone pair) groups scored
    n_across: int


def abx_error(features: dict[str, np.ndarray], items: list[Item], cosine: bool, max_per_cell: int = 5,
              seed: int = 0) -> ABXResult:
    """ABX error rates for ``features`` {utt: (frames, D)} (codes: (frames, 1) ints, cosine=False)."""
    rng = np.random.default_rng(seed)
    items = _cap(items, max_per_cell, rng)
    by_context = defaultdict(list)
    for it in items:
        by_context[it.context].append(it)
    within, across = [], []
    for ctx in sorted(by_context):
        group = by_context[ctx]
        if len({it.phone for it in group}) < 2:
            continue
        segs = [np.ascontiguousarray(features[it.utt][it.start:it.end], dtype=np.float64) for it in group]
        n = len(group)
        dist = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                dist[i, j] = dist[j, i] = dtw_distance(segs[i], segs[j], cosine)
        phones = np.array([it.phone for it in group])
        spks = np.array([it.speaker for it in group])
        for s_ab in np.unique(spks):
            for s_x in np.unique(spks):
                target = within if s_ab == s_x else across
                for pa in np.unique(phones):
                    for pb in np.unique(phones):
                        if pa == pb:
                            continue
                        A = np.nonzero((phones == pa) & (spks == s_ab))[0]
                        B = np.nonzero((phones == pb) & (spks == s_ab))[0]
                        X = np.nonzero((phones == pa) & (spks == s_x))[0]
                        if len(A) == 0 or len(B) == 0 or len(X) == 0:
                            continue
                        errs, count = 0.0, 0
                        for x in X:
                            a_ok = A[A != x]
                            if len(a_ok) == 0:
                                continue
                            dax = dist[a_ok, x][:, None]
                            dbx = dist[B, x][None, :]
                            errs += float((dax > dbx).sum() + 0.5 * (dax == dbx).sum())
                            count += dax.size * dbx.size
                        if count:
                            target.append(errs / count)
    return ABXResult(float(np.mean(within)) if within else None, float(np.mean(across)) if across else None,
                     len(within), len(across))
