"""Triphone-context ABX discrimination as ZeroSpeech defines it (Schatz et al. 2013; the
ZeroSpeech 2017-2021 and libri-light evaluations).

Items are phone tokens (an interval of frames) with their left and right phone as
context.  A triplet (A, B, X) has A and X of the same phone, B of another phone, all three
in the same context.  *Within* speaker: A, B, X from one speaker; *across*: A and B from
one speaker, X from another.  The triplet is an error when d(A, X) > d(B, X) (half an
error on a tie).

d is dynamic time warping of the frame distance, the angle between the frame vectors
(arccos of the cosine, divided by pi), averaged along the DTW path.  Discrete codes are
compared as one-hot vectors (distance 0 for the same code, 0.5 for another). Each token uses the frames libri-light
selects for its times: all but its last frame (so one-frame tokens are not scored).

Averaging (libri-light's order): the error of each (context, speaker(s), phone pair) cell
is averaged over contexts (across: over contexts and X speakers), then over the A/B
speaker, then over the ordered phone pairs.

:func:`write_item_file` writes the items in the ZeroSpeech ``.item`` format so that other
tools can rerun the evaluation on the same tokens.
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
    """Angular distance in [0, 1] between frame i of a and frame j of b; for codes (one column of
    code ids, ``cosine`` false) the angle between one-hot vectors: 0 or 0.5."""
    if not cosine:
        return 0.0 if a[i, 0] == b[j, 0] else 0.5
    dot = 0.0
    na = 0.0
    nb = 0.0
    for k in range(a.shape[1]):
        dot += a[i, k] * b[j, k]
        na += a[i, k] * a[i, k]
        nb += b[j, k] * b[j, k]
    if na == 0.0 or nb == 0.0:
        return 0.5  # a zero vector has no direction: count it as orthogonal
    c = dot / math.sqrt(na * nb)
    c = min(1.0, max(-1.0, c))
    return math.acos(c) / math.pi


@numba.njit(cache=True)
def dtw_distance(a, b, cosine):
    """Frame distance averaged along the DTW path: (n, D), (m, D) -> float.

    Steps (1, 0), (0, 1), (1, 1); the path is traced back from the end preferring the
    diagonal, then (0, -1), then (-1, 0) on ties, and the accumulated cost is divided by its
    number of cells (libri-light's normalisation). For codes pass (n, 1) code ids and
    ``cosine=False``.
    """
    n, m = a.shape[0], b.shape[0]
    cost = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            d = _frame_dist(a, b, i, j, cosine)
            if i == 0 and j == 0:
                cost[i, j] = d
            elif i == 0:
                cost[i, j] = d + cost[i, j - 1]
            elif j == 0:
                cost[i, j] = d + cost[i - 1, j]
            else:
                cost[i, j] = d + min(cost[i - 1, j], cost[i - 1, j - 1], cost[i, j - 1])
    i, j, length = n - 1, m - 1, 1
    while i > 0 and j > 0:
        up, left, diag = cost[i - 1, j], cost[i, j - 1], cost[i - 1, j - 1]
        if diag <= left and diag <= up:
            i -= 1
            j -= 1
        elif left <= up:
            j -= 1
        else:
            i -= 1
        length += 1
    length += i + j  # the rest runs along the first row or column
    return cost[n - 1, m - 1] / length


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
    # libri-light's frame selection for an item [onset, offset) in seconds is frames
    # ceil(onset / shift - 0.5) .. floor(offset / shift - 0.5), end exclusive: for our
    # frame-aligned items, every frame but the last. One-frame tokens have none and drop out.
    items = [Item(it.utt, it.start, it.end - 1, it.phone, it.context, it.speaker) for it in items
             if it.end - it.start >= 2]
    items = _cap(items, max_per_cell, rng)
    by_context = defaultdict(list)
    for it in items:
        by_context[it.context].append(it)
    within: dict[tuple, list[float]] = defaultdict(list)   # (speaker, pa, pb) -> per-context errors
    across: dict[tuple, list[float]] = defaultdict(list)   # (A/B speaker, pa, pb) -> per (context, X speaker)
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
                cells = within if s_ab == s_x else across
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
                            cells[(str(s_ab), str(pa), str(pb))].append(errs / count)
    return ABXResult(_average(within), _average(across), sum(map(len, within.values())),
                     sum(map(len, across.values())))


def _average(cells: dict[tuple, list[float]]) -> float | None:
    """Mean over contexts (already grouped), then over speakers, then over phone pairs."""
    if not cells:
        return None
    per_pair: dict[tuple, list[float]] = defaultdict(list)
    for (spk, pa, pb), errs in cells.items():
        per_pair[(pa, pb)].append(float(np.mean(errs)))
    return float(np.mean([np.mean(v) for v in per_pair.values()]))


ITEM_HEADER = "#file onset offset #phone prev-phone next-phone speaker"


def write_item_file(path, items: list[Item], frame_shift: float) -> None:
    """The items in ZeroSpeech's ``.item`` format, times in seconds (frame i spans
    [i, i + 1) x ``frame_shift``, so tools that keep the frames whose centres fall inside an
    item select exactly our frames)."""
    from ..fileio import atomic_write

    with atomic_write(path) as fh:
        fh.write(ITEM_HEADER + "\n")
        for it in items:
            fh.write(f"{it.utt} {it.start * frame_shift:.4f} {it.end * frame_shift:.4f} {it.phone} "
                     f"{it.context[0]} {it.context[1]} {it.speaker}\n")
