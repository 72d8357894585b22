"""How well the prior models codes, and what its samples look like as phones.

- :func:`cross_entropy_bits`: the prior's cross-entropy on whole utterances, in bits per code
  (windows of ``context`` codes; after the first, each keeps half a context of history).
- :func:`unigram_bits`: the baseline, the codes' unigram entropy and the cross-entropy of
  held-out codes under the training unigram (add-one smoothed).
- :func:`phone_statistics`: codes mapped to phones by the many-to-one mapping of real codes
  against the alignment, repeated phones merged, then the perplexity of a phone bigram model
  (fit on half of the real utterances) on the other half, on sampled codes, and on codes drawn
  from the unigram (the floor a prior must beat).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F

from .data import CodeCorpus


@torch.no_grad()
def cross_entropy_bits(prior, corpus: CodeCorpus, device="cpu") -> float:
    prior.eval()
    C = prior.cfg.context
    nats, count = 0.0, 0
    for seq, spk in zip(corpus.sequences, corpus.speakers.tolist()):
        n = len(seq) - 1
        pos = 0  # next target index (target j is seq[j + 1])
        while pos < n:
            hist = 0 if pos == 0 else min(pos, C // 2)
            k = min(C - hist, n - pos)
            inp = seq[pos - hist:pos + k].to(device)[None]
            tgt = seq[pos - hist + 1:pos + k + 1].to(device)
            logits = prior(inp, torch.tensor([spk], device=device))[0, hist:]
            nats += F.cross_entropy(logits.float(), tgt[hist:], reduction="sum").item()
            count += k
            pos += k
    return nats / max(count, 1) / math.log(2)


def unigram_bits(train_codes: dict[str, list[int]], test_codes: dict[str, list[int]], num_codes: int) -> dict:
    counts = np.bincount(np.concatenate([np.asarray(c) for c in train_codes.values()]), minlength=num_codes)
    p = counts / counts.sum()
    entropy = float(-(p[p > 0] * np.log2(p[p > 0])).sum())
    smooth = (counts + 1) / (counts.sum() + num_codes)
    test = np.concatenate([np.asarray(c) for c in test_codes.values()])
    return {"unigram_entropy_bits": entropy, "unigram_cross_entropy_bits": float(-np.log2(smooth[test]).mean())}


def phone_runs(codes: list[int], code_to_phone: dict[int, str]) -> list[str]:
    """Codes -> phones (unknown codes -> '?'), consecutive repeats merged."""
    out: list[str] = []
    for c in codes:
        p = code_to_phone.get(int(c), "?")
        if not out or out[-1] != p:
            out.append(p)
    return out


class BigramLM:
    """Add-one smoothed phone bigram model with sentence boundaries."""

    def __init__(self, sequences: list[list[str]]):
        self.vocab = sorted({p for s in sequences for p in s} | {"?", "</s>"})
        self.pairs = Counter()
        self.history = Counter()
        for s in sequences:
            for a, b in zip(["<s>"] + s, s + ["</s>"]):
                self.pairs[a, b] += 1
                self.history[a] += 1

    def log_prob(self, a: str, b: str) -> float:
        return math.log((self.pairs[a, b] + 1) / (self.history[a] + len(self.vocab)))

    def perplexity(self, sequences: list[list[str]]) -> float:
        total, n = 0.0, 0
        for s in sequences:
            for a, b in zip(["<s>"] + s, s + ["</s>"]):
                total += self.log_prob(a, b)
                n += 1
        return math.exp(-total / max(n, 1))


def phone_statistics(real: dict[str, list[int]], labels: dict[str, list[str]], sampled: dict[str, list[int]],
                     seed: int = 0) -> dict:
    """``real`` codes with frame ``labels`` (phones) -> the mapping, then bigram perplexities.

    Returns {held_out_real, sampled, unigram_random} perplexities and mean phone-run lengths.
    """
    from ..phones.mapping import ContingencyTable

    utts = sorted(u for u in real if u in labels)
    table = ContingencyTable.build(np.concatenate([real[u] for u in utts]), np.concatenate([labels[u] for u in utts]))
    mapping = table.code_to_phone()
    runs = {u: phone_runs(real[u], mapping) for u in utts}
    fit, held = [runs[u] for u in utts[::2]], [runs[u] for u in utts[1::2]]
    lm = BigramLM(fit)
    rng = np.random.default_rng(seed)
    flat = np.concatenate([real[u] for u in utts])
    random_codes = [list(rng.choice(flat, size=len(c))) for c in sampled.values()]
    samp = [phone_runs(c, mapping) for c in sampled.values()]
    rand = [phone_runs(c, mapping) for c in random_codes]

    def mean_run(codes_seqs, run_seqs):
        lengths = [len(c) / max(1, len(r)) for c, r in zip(codes_seqs, run_seqs)]
        return float(np.mean(lengths)) if lengths else float("nan")

    return {
        "bigram_perplexity": {"held_out_real": lm.perplexity(held), "sampled": lm.perplexity(samp),
                              "unigram_random": lm.perplexity(rand)},
        "codes_per_phone_run": {"real": mean_run([real[u] for u in utts], [runs[u] for u in utts]),
                                "sampled": mean_run(list(sampled.values()), samp),
                                "unigram_random": mean_run(random_codes, rand)},
        "phones_in_mapping": len(set(mapping.values())),
        "utterances": {"fit": len(fit), "held_out": len(held), "sampled": len(samp)},
    }
