"""Code sequences for the prior: BOS-prefixed utterances and seeded random crops of them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..codes_file import check_code_range
from ..errors import UserError

IGNORE = -100  # target value of padding (cross_entropy's ignore_index)


@dataclass
class CodeCorpus:
    """``sequences[i]`` (1 + n_i,) int64 is BOS followed by utterance i's codes; ``speakers`` (N,)."""

    utts: list[str]
    sequences: list[torch.Tensor]
    speakers: torch.Tensor
    bos: int

    @classmethod
    def from_codes(cls, codes: dict[str, list[int]], utt2spk: dict[str, str], speakers: list[str], num_codes: int,
                   source) -> "CodeCorpus":
        check_code_range(codes, num_codes, source)
        utts, seqs, spk = [], [], []
        index = {s: i for i, s in enumerate(speakers)}
        for utt in sorted(codes):
            if utt not in utt2spk:
                raise UserError(f"{source}: utterance {utt!r} is not in the data directory's utt2spk")
            if utt2spk[utt] not in index:
                raise UserError(f"{source}: speaker {utt2spk[utt]!r} of {utt!r} is not one of the model's "
                                f"speakers {speakers}")
            utts.append(utt)
            seqs.append(torch.tensor([num_codes] + list(codes[utt]), dtype=torch.long))
            spk.append(index[utt2spk[utt]])
        if not utts:
            raise UserError(f"{source}: no utterances")
        return cls(utts, seqs, torch.tensor(spk, dtype=torch.long), num_codes)

    @property
    def num_codes_total(self) -> int:
        return sum(len(s) - 1 for s in self.sequences)


def crop_batch(corpus: CodeCorpus, batch: int, context: int, seed: int, step: int, rank: int = 0):
    """A pure function of (seed, step, rank): inputs (B, L), targets (B, L), speakers (B,).

    Utterances are drawn in proportion to their length; each contributes a random window of up
    to ``context`` next-code predictions (its start, BOS included, or any later position).
    Short windows are padded: input BOS, target :data:`IGNORE`.
    """
    g = torch.Generator().manual_seed((seed * 1_000_003 + step) * 64 + rank)
    lengths = torch.tensor([len(s) - 1 for s in corpus.sequences], dtype=torch.float64)
    picks = torch.multinomial(lengths, batch, replacement=True, generator=g)
    inputs = torch.full((batch, context), corpus.bos, dtype=torch.long)
    targets = torch.full((batch, context), IGNORE, dtype=torch.long)
    for row, i in enumerate(picks.tolist()):
        seq = corpus.sequences[i]
        n = len(seq) - 1  # predictions available
        start = 0 if n <= context else int(torch.randint(0, n - context + 1, (1,), generator=g))
        k = min(context, n)
        inputs[row, :k] = seq[start:start + k]
        targets[row, :k] = seq[start + 1:start + k + 1]
    return inputs, targets, corpus.speakers[picks]
