"""Speaker information left in the codes: predict the speaker from an utterance's code histogram.

Lower accuracy is better for voice conversion (the codes carry content, the speaker
embedding carries identity).  Reported against chance (the most frequent speaker's share).
"""

from __future__ import annotations

import numpy as np


def code_histograms(codes: dict[str, list[int]], num_codes: int) -> tuple[list[str], np.ndarray]:
    """{utt: codes} -> (utts, (U, K) normalised code histograms)."""
    utts = sorted(codes)
    hist = np.zeros((len(utts), num_codes))
    for i, u in enumerate(utts):
        c = np.bincount(np.asarray(codes[u]), minlength=num_codes)[:num_codes]
        hist[i] = c / max(1, c.sum())
    return utts, hist


def speaker_leakage(codes: dict[str, list[int]], utt2spk: dict[str, str], num_codes: int,
                    folds: int = 5, seed: int = 0) -> dict:
    """Cross-validated accuracy of a logistic-regression speaker classifier on code histograms."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    utts, x = code_histograms(codes, num_codes)
    y = np.array([utt2spk[u] for u in utts])
    _, counts = np.unique(y, return_counts=True)
    chance = float(counts.max() / counts.sum())
    k = int(min(folds, counts.min()))
    if len(counts) < 2 or k < 2:
        return {"accuracy": None, "chance": chance, "folds": 0, "utterances": len(utts),
                "note": "need at least 2 speakers with 2 utterances each"}
    clf = LogisticRegression(max_iter=2000, C=10.0)
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    scores = cross_val_score(clf, x, y, cv=cv)
    return {"accuracy": float(scores.mean()), "chance": chance, "folds": k, "utterances": len(utts)}
