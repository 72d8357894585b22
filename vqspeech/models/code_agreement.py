"""Parallel code agreement: one sentence read by two voices should get one code sequence.

Given a crop's encoder outputs and its partner reading's (another voice, the same transcript,
:meth:`vqspeech.parallel_targets.ParallelTargets.draw_partner_crops`) with, for each crop code,
the partner code DTW aligns with it, two losses pull the crop towards its partner:

- ``commitment``: the mean squared distance from each crop code's encoder output to the code
  vector the partner moment quantizes to: the VQ commitment loss with the partner's code as the
  target.  It makes codes shared across voices, and also pulls neighbouring moments of different
  content together wherever DTW is a code off.
- ``contrastive``: an InfoNCE loss across the two readings: each crop code's encoder output must
  pick its aligned partner moment out of all the partner crop's moments by cosine similarity
  (temperature ``tau``), the moments within ``guard`` codes of the aligned one left out (they are
  the same phone, and DTW is only that exact).  Sharing content across voices then comes with
  keeping different content apart.

The partner side is a constant target in both (encoded without gradient by the caller).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

def _valid(index: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, n') aligned partner index -> ((B, n) index clamped to >= 0, (B, n) float mask)."""
    index = index[:, :n]
    return index.clamp(min=0), (index >= 0).float()


def commitment_to_partner(z: torch.Tensor, partner_codes: torch.Tensor, codebook: torch.Tensor,
                          index: torch.Tensor) -> torch.Tensor:
    """z (B, D, n) crop encoder outputs, partner_codes (B, m) the partner crop's code indices,
    codebook (K, D), index (B, n) aligned partner code (-1: none) -> scalar masked mean over the
    crop codes of the mean squared distance to the aligned partner code's vector."""
    idx, w = _valid(index, z.shape[-1])
    target = F.embedding(partner_codes.gather(1, idx.clamp(max=partner_codes.shape[1] - 1)),
                         codebook.detach()).transpose(1, 2)           # (B, D, n)
    err = (z.float() - target.float()).pow(2).mean(dim=1)            # (B, n)
    return (err * w).sum() / w.sum().clamp(min=1.0)


def contrastive_to_partner(z: torch.Tensor, zp: torch.Tensor, index: torch.Tensor, tau: float = 0.1,
                           guard: int = 2) -> torch.Tensor:
    """z (B, D, n) crop encoder outputs, zp (B, D, m) the partner crop's, index (B, n) aligned
    partner moment (-1: none) -> scalar masked mean over the crop codes of the cross-entropy of
    picking the aligned moment among the partner's m by cosine similarity / ``tau``, with the
    moments 1..``guard`` codes from it excluded."""
    idx, w = _valid(index, z.shape[-1])
    a = F.normalize(z.float(), dim=1)
    b = F.normalize(zp.float(), dim=1)
    logits = torch.einsum("bdn,bdm->bnm", a, b) / tau                # (B, n, m)
    offset = (torch.arange(zp.shape[-1], device=z.device)[None, None, :] - idx[..., None]).abs()
    logits = logits.masked_fill((offset >= 1) & (offset <= guard), float("-inf"))
    ce = F.cross_entropy(logits.transpose(1, 2), idx.clamp(max=zp.shape[-1] - 1), reduction="none")  # (B, n)
    return (ce * w).sum() / w.sum().clamp(min=1.0)
