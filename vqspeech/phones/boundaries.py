"""Phone boundary detection from code changes: precision, recall, F1, R-value.

A hypothesised boundary is a time where the code changes (frame edge, seconds); a reference
boundary is an inner phone boundary.  Matching is one-to-one within ``tolerance`` seconds
(greedy by distance).  R-value (Räsänen et al. 2009) = 1 - (|r1| + |r2|) / 2 with
r1 = sqrt((1 - HR)^2 + OS^2), r2 = (-OS + HR - 1) / sqrt(2), HR the hit rate (recall),
OS the over-segmentation recall / precision - 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def code_boundaries(codes, frame_shift: float) -> np.ndarray:
    """Times (s) of the frame edges where the code changes."""
    codes = np.asarray(codes)
    idx = np.nonzero(codes[1:] != codes[:-1])[0] + 1
    return idx * frame_shift


def match_boundaries(ref: np.ndarray, hyp: np.ndarray, tolerance: float) -> int:
    """Number of one-to-one matches within tolerance (closest pairs first)."""
    pairs = []
    for i, r in enumerate(ref):
        lo, hi = np.searchsorted(hyp, [r - tolerance - 1e-9, r + tolerance + 1e-9])
        for j in range(lo, hi):
            pairs.append((abs(hyp[j] - r), i, j))
    pairs.sort()
    used_r, used_h, hits = set(), set(), 0
    for _, i, j in pairs:
        if i not in used_r and j not in used_h:
            used_r.add(i)
            used_h.add(j)
            hits += 1
    return hits


@dataclass
class BoundaryScores:
    precision: float
    recall: float
    f1: float
    r_value: float
    hits: int
    n_ref: int
    n_hyp: int


def boundary_scores(hits: int, n_ref: int, n_hyp: int) -> BoundaryScores:
    p = hits / n_hyp if n_hyp else 0.0
    r = hits / n_ref if n_ref else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    os_ = r / p - 1 if p else 0.0
    r1 = math.sqrt((1 - r) ** 2 + os_ ** 2)
    r2 = (-os_ + r - 1) / math.sqrt(2)
    return BoundaryScores(p, r, f1, 1 - (abs(r1) + abs(r2)) / 2, hits, n_ref, n_hyp)


def evaluate_boundaries(utterances: list[tuple[np.ndarray, np.ndarray]], tolerance: float = 0.02) -> BoundaryScores:
    """``utterances``: [(reference boundary times, hypothesis boundary times)] -> pooled scores."""
    hits = n_ref = n_hyp = 0
    for ref, hyp in utterances:
        ref, hyp = np.sort(np.asarray(ref, float)), np.sort(np.asarray(hyp, float))
        hits += match_boundaries(ref, hyp, tolerance)
        n_ref += len(ref)
        n_hyp += len(hyp)
    return boundary_scores(hits, n_ref, n_hyp)
