"""A causal transformer over code sequences, conditioned on the speaker.

Why a transformer and not a WaveNet over codes: at 250 codes/s a phone spans 12-40 codes and
a word 50-150, so the context that matters is hundreds of positions; self-attention sees the
whole window in one layer, where a dilated stack needs depth to grow its receptive field, and
teacher-forced training is one parallel pass either way.  The model is small (4 layers of
192 channels by default) because the corpora it serves are small.

Tokens: codes 0..K-1 and BOS = K (the start of an utterance).  The speaker embedding is added
to every position, as the WaveNet adds it to every layer.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import PriorModelConfig


class CodePrior(nn.Module):
    """forward: tokens (B, L) in 0..K, speakers (B,) -> logits (B, L, K) for the next code."""

    def __init__(self, num_codes: int, num_speakers: int, cfg: PriorModelConfig):
        super().__init__()
        self.cfg = cfg
        self.num_codes = num_codes
        self.bos = num_codes
        self.tokens = nn.Embedding(num_codes + 1, cfg.dim)
        self.speakers = nn.Embedding(num_speakers, cfg.dim)
        self.positions = nn.Embedding(cfg.context, cfg.dim)
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, cfg.ffn, cfg.dropout, batch_first=True,
                                           norm_first=True)
        self.body = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, num_codes)

    def forward(self, tokens: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
        L = tokens.shape[1]
        if L > self.cfg.context:
            raise ValueError(f"{L} tokens exceed the prior's context of {self.cfg.context}")
        pos = torch.arange(L, device=tokens.device)
        h = self.tokens(tokens) + self.positions(pos)[None] + self.speakers(speakers)[:, None]
        mask = nn.Transformer.generate_square_subsequent_mask(L, device=tokens.device)
        h = self.body(h, mask=mask, is_causal=True)
        return self.head(self.norm(h))
