"""Cached incremental generation with torch ops: the reference every backend is checked against.

"Fast Wavenet Generation" (Paine et al. 2016): each dilated layer keeps a queue of its past
inputs, so one sample costs O(layers) work instead of a pass over the whole prefix.  The
logits equal the training model's teacher-forced logits (``tests/test_wavenet.py``).
"""

from __future__ import annotations

import math

import torch

from .sampling import SamplingOptions, pick
from .step_weights import StepWeights, frame_conditioning


class IncrementalState:
    """Per-layer queues of past layer inputs: L x (B, R, dilation)."""

    def __init__(self, weights: StepWeights, batch: int, device):
        R = weights.embed.shape[1]
        self.queues = [torch.zeros(batch, R, int(d), device=device) for d in weights.dilations]


def incremental_step(w: StepWeights, state: IncrementalState, prev: torch.Tensor, t: int,
                     cond: torch.Tensor, frame: int) -> torch.Tensor:
    """One sample for every batch element: previous classes (B,) -> logits (B, Q).

    ``cond`` (L, B, F, 2G) are the per-layer gate biases at the frame rate (conv bias folded in).
    """
    x = w.embed[prev]  # (B, R)
    skip = w.b_skip.sum(0)
    scale = math.sqrt(0.5)
    for l, q in enumerate(state.queues):
        slot = t % q.shape[2]
        h = q[:, :, slot] @ w.w_past[l] + x @ w.w_cur[l] + cond[l, :, frame]
        q[:, :, slot] = x
        a, b = h.chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        skip = skip + z @ w.w_skip[l]
        x = (x + z @ w.w_res[l] + w.b_res[l]) * scale
    return torch.relu(torch.relu(skip) @ w.w1 + w.b1) @ w.w2 + w.b2


@torch.no_grad()
def generate_reference(model, codes: torch.Tensor, speaker: torch.Tensor, T: int, uniforms: torch.Tensor,
                       opts: SamplingOptions, teacher: torch.Tensor | None = None, return_logits: bool = False):
    """(B, F) codes, (B,) speakers -> (B, T) classes [and (B, Q, T) logits].

    ``teacher`` (B, T) classes are fed back instead of the samples (testing).
    """
    w = StepWeights.from_decoder(model.decoder)
    B = codes.shape[0]
    cond = frame_conditioning(model, codes, speaker, w.b_conv)
    state = IncrementalState(w, B, codes.device)
    prev = torch.full((B,), model.decoder.cfg.quantization_channels // 2, dtype=torch.long, device=codes.device)
    out = torch.empty(B, T, dtype=torch.long, device=codes.device)
    all_logits = []
    for t in range(T):
        logits = incremental_step(w, state, prev, t, cond, t // model.hop)
        if return_logits:
            all_logits.append(logits)
        out[:, t] = pick(logits, uniforms[:, t], opts)
        prev = teacher[:, t] if teacher is not None else out[:, t]
    if return_logits:
        return out, torch.stack(all_logits, dim=2)
    return out
