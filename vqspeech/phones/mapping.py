"""Frame-level code/phone co-occurrence metrics.

Inputs are aligned per-frame sequences: ``codes`` (N,) ints and ``phones`` (N,) labels, all
utterances concatenated.  From the joint count table ``C[code, phone]``:

- many-to-one accuracy (the paper's 49.3%): each code mapped to its most frequent phone;
  equals *phone purity* of HuBERT (Hsu et al. 2021): E_code[max_phone p(phone | code)];
- cluster purity: E_phone[max_code p(code | phone)] (how concentrated each phone is);
- chance: always answering the most frequent phone;
- PNMI: I(phone; code) / H(phone), phone-normalised mutual information;
- code perplexity exp(H(code)) and the number of codes used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ContingencyTable:
    counts: np.ndarray      # (K, P) joint counts
    codes: list[int]        # row labels
    phones: list[str]       # column labels

    @classmethod
    def build(cls, codes, phones) -> "ContingencyTable":
        codes = np.asarray(codes)
        phones = np.asarray(phones)
        if codes.shape != phones.shape:
            raise ValueError(f"codes {codes.shape} and phones {phones.shape} differ in length")
        code_ids, ci = np.unique(codes, return_inverse=True)
        phone_ids, pi = np.unique(phones, return_inverse=True)
        table = np.zeros((len(code_ids), len(phone_ids)), dtype=np.int64)
        np.add.at(table, (ci, pi), 1)
        return cls(table, [int(c) for c in code_ids], [str(p) for p in phone_ids])

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def code_to_phone(self) -> dict[int, str]:
        """Each code's most frequent phone (ties: first phone in sorted order)."""
        return {c: self.phones[j] for c, j in zip(self.codes, self.counts.argmax(1))}


def many_to_one_accuracy(t: ContingencyTable) -> float:
    return float(t.counts.max(1).sum() / t.total)


def cluster_purity(t: ContingencyTable) -> float:
    return float(t.counts.max(0).sum() / t.total)


def chance_accuracy(t: ContingencyTable) -> float:
    return float(t.counts.sum(0).max() / t.total)


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def pnmi(t: ContingencyTable) -> float:
    """I(phone; code) / H(phone) in [0, 1]."""
    pxy = t.counts / t.total
    px = pxy.sum(1, keepdims=True)
    py = pxy.sum(0, keepdims=True)
    nz = pxy > 0
    mi = float((pxy[nz] * np.log(pxy[nz] / (px @ py)[nz])).sum())
    h = _entropy(py.ravel())
    return mi / h if h > 0 else 0.0


def code_perplexity(codes) -> float:
    _, counts = np.unique(np.asarray(codes), return_counts=True)
    return float(np.exp(_entropy(counts / counts.sum())))


def per_phone_accuracy(t: ContingencyTable) -> dict[str, float]:
    """Share of each phone's frames whose code maps to that phone."""
    mapped = t.counts.argmax(1)
    out = {}
    for j, ph in enumerate(t.phones):
        total = t.counts[:, j].sum()
        out[ph] = float(t.counts[mapped == j, j].sum() / total) if total else 0.0
    return out


def bitrate(sequences: list, total_seconds: float, merge_repeats: bool = False) -> float:
    """ZeroSpeech 2019 bitrate: (symbols / second) x entropy of the symbol distribution (bits).

    ``sequences`` are per-utterance symbol lists; ``merge_repeats`` first collapses runs of the
    same symbol (the rate of a run-length coded stream).
    """
    seqs = [np.asarray(s) for s in sequences]
    if merge_repeats:
        seqs = [s[np.concatenate([[True], s[1:] != s[:-1]])] if len(s) else s for s in seqs]
    allsym = np.concatenate(seqs) if seqs else np.zeros(0)
    if allsym.size == 0 or total_seconds <= 0:
        return 0.0
    _, counts = np.unique(allsym, return_counts=True)
    p = counts / counts.sum()
    return float(allsym.size / total_seconds * -(p * np.log2(p)).sum())
