"""Naive generation: run the decoder again over the prefix for every sample.

Sample t costs O(t) (``naive``) or O(receptive field) (``naive-window``, the cheapest exact
recomputation); the baselines that show why the cached backends exist.
"""

from __future__ import annotations

import torch

from .sampling import SamplingOptions, pick


def naive_step(model, classes: torch.Tensor, c: torch.Tensor, g: torch.Tensor,
               window: int | None = None) -> torch.Tensor:
    """Logits for the next sample by running the decoder again: (B, t) classes so far -> (B, Q).

    ``window=None`` recomputes the whole prefix; ``window=receptive_field`` only the samples the
    prediction can see.  ``c`` (B, C, F) and ``g`` (B, speaker_dim) are the conditioning features.
    """
    wn = model.decoder
    B, t = classes.shape
    lo = 0 if window is None else max(0, t - window + 1)
    mid = wn.cfg.quantization_channels // 2
    # Decoder inputs for positions lo..t are the samples lo-1..t-1 (silence before the start).
    before = classes[:, lo - 1:lo] if lo > 0 else torch.full((B, 1), mid, dtype=torch.long, device=classes.device)
    inputs = torch.cat([before, classes[:, lo:t]], dim=1)
    frame0 = lo // model.hop
    offset = lo - frame0 * model.hop
    x = wn.embed(inputs).transpose(1, 2)
    n = inputs.shape[1]
    skip = None
    for layer, cond in zip(wn.layers, wn.layer_conditioning(c[:, :, frame0:], g)):
        cond = cond.repeat_interleave(model.hop, dim=2)[:, :, offset:offset + n]
        x, s = layer(x, cond)
        skip = s if skip is None else skip + s
    return wn.output(skip[:, :, -1:]).squeeze(-1)


@torch.no_grad()
def generate_naive(model, codes, speaker, T: int, uniforms, opts: SamplingOptions,
                   window: int | None = None) -> torch.Tensor:
    """Recompute the decoder for every sample (see :func:`naive_step`): (B, T) classes."""
    c, g = model.code_conditioning(codes, speaker)
    classes = torch.zeros((codes.shape[0], 0), dtype=torch.long, device=codes.device)
    for t in range(T):
        logits = naive_step(model, classes, c, g, window)
        classes = torch.cat([classes, pick(logits, uniforms[:, t], opts).unsqueeze(1)], dim=1)
    return classes


@torch.no_grad()
def generate_naive_window(model, codes, speaker, T: int, uniforms, opts: SamplingOptions) -> torch.Tensor:
    return generate_naive(model, codes, speaker, T, uniforms, opts, model.decoder.receptive_field)
