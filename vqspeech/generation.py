"""WaveNet sample generation from codes and a speaker.

Three interchangeable methods, the same samples for the same seed:

- ``naive``: run the decoder again over the whole prefix for every sample, so sample t
  costs O(t); the baseline that shows why caching matters (``naive-window`` recomputes only
  the receptive field, the cheapest exact recomputation).
- ``reference``: cached incremental generation ("Fast Wavenet Generation", Paine et al.
  2016): each dilated layer keeps a queue of its past inputs, so one sample costs
  O(layers) work.  Written with torch ops; its logits equal the training model's
  teacher-forced logits.
- ``fast``: the same recursion compiled with numba (no per-operation framework overhead),
  the batch elements run in parallel threads.  See :mod:`vqspeech.fast_wavenet`.
- ``cuda-graph`` (CUDA only): the reference step captured once as a CUDA graph and replayed
  per sample, removing kernel-launch overhead.

Sampling draws one uniform number per sample up front (``torch.rand`` with the seed) and
inverts the softmax CDF, so every method makes the same draw for the same seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .audio import mulaw_decode
from .models import VQVAE

METHODS = ("fast", "reference", "naive", "naive-window", "cuda-graph")


@dataclass
class SamplingOptions:
    temperature: float = 1.0
    seed: int = 0
    argmax: bool = False

    def check(self) -> None:
        if not self.argmax and not self.temperature > 0:
            raise ValueError("temperature must be > 0 (or use argmax)")

    def uniforms(self, batch: int, length: int) -> torch.Tensor:
        """(B, T) float64 uniforms in [0, 1), one per generated sample."""
        g = torch.Generator().manual_seed(self.seed)
        return torch.rand(batch, length, generator=g, dtype=torch.float64)


def pick(logits: torch.Tensor, u: torch.Tensor, opts: SamplingOptions) -> torch.Tensor:
    """(B, Q) logits, (B,) uniforms -> (B,) classes by inverse-CDF sampling (or argmax)."""
    if opts.argmax:
        return logits.argmax(-1)
    probs = torch.softmax(logits.double() / opts.temperature, dim=-1)
    cdf = probs.cumsum(-1)
    idx = torch.searchsorted(cdf, (u.to(cdf.device) * cdf[:, -1]).unsqueeze(1), right=True).squeeze(1)
    return idx.clamp(max=logits.shape[-1] - 1)


class IncrementalState:
    """Per-layer queues of past layer inputs for cached generation: L x (B, R, dilation)."""

    def __init__(self, model: VQVAE, batch: int, device):
        wn = model.decoder
        R = wn.cfg.residual_channels
        self.queues = [torch.zeros(batch, R, layer.dilation, device=device) for layer in wn.layers]


def incremental_step(model: VQVAE, state: IncrementalState, prev: torch.Tensor, t: int,
                     conds: list[torch.Tensor], frame: int) -> torch.Tensor:
    """One sample for every batch element: previous classes (B,) -> logits (B, Q).

    ``conds`` are the per-layer gate biases at the frame rate, L x (B, 2G, F).
    """
    wn = model.decoder
    x = wn.embed(prev)  # (B, R)
    skip = None
    scale = math.sqrt(0.5)
    for layer, q, cond in zip(wn.layers, state.queues, conds):
        slot = t % layer.dilation
        w = layer.conv.weight  # (2G, R, 2): tap 0 sees t - d, tap 1 sees t
        h = q[:, :, slot] @ w[:, :, 0].t() + x @ w[:, :, 1].t() + layer.conv.bias + cond[:, :, frame]
        q[:, :, slot] = x
        a, b = h.chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        s = z @ layer.skip.weight[:, :, 0].t() + layer.skip.bias
        if layer.res is not None:
            x = (x + z @ layer.res.weight[:, :, 0].t() + layer.res.bias) * scale
        skip = s if skip is None else skip + s
    return wn.output(skip.unsqueeze(-1)).squeeze(-1)


@torch.no_grad()
def generate_classes(model: VQVAE, codes: torch.Tensor, speaker: torch.Tensor, num_samples: int | None = None,
                     opts: SamplingOptions | None = None, method: str = "fast",
                     teacher: torch.Tensor | None = None, return_logits: bool = False):
    """Generate mu-law classes.

    Args:
        codes: (B, F) code indices.  speaker: (B,) speaker indices.
        num_samples: samples per element (default F * hop).
        method: one of :data:`METHODS`.
        teacher: (B, T) classes fed back instead of the samples (testing; reference only).
    Returns:
        (B, T) int64 classes, and (B, Q, T) logits when ``return_logits`` (reference only).
    """
    opts = opts or SamplingOptions()
    opts.check()
    T = num_samples or codes.shape[1] * model.hop
    if T > codes.shape[1] * model.hop:
        raise ValueError(f"num_samples {T} exceeds the {codes.shape[1]} frames of codes")
    uniforms = opts.uniforms(codes.shape[0], T)
    if method == "fast":
        from .fast_wavenet import FastWaveNet

        return FastWaveNet.from_model(model).generate(codes, speaker, T, uniforms, opts)
    if method in ("naive", "naive-window"):
        window = model.decoder.receptive_field if method == "naive-window" else None
        return _generate_naive(model, codes, speaker, T, uniforms, opts, window)
    if method == "cuda-graph":
        from .cuda_graph import generate_cuda_graph

        return generate_cuda_graph(model, codes, speaker, T, uniforms, opts)
    if method != "reference":
        raise ValueError(f"unknown generation method {method!r}; choose from {', '.join(METHODS)}")
    B = codes.shape[0]
    conds = model.codes_to_conditioning(codes, speaker)
    state = IncrementalState(model, B, codes.device)
    prev = torch.full((B,), model.decoder.cfg.quantization_channels // 2, dtype=torch.long, device=codes.device)
    out = torch.empty(B, T, dtype=torch.long, device=codes.device)
    all_logits = []
    for t in range(T):
        logits = incremental_step(model, state, prev, t, conds, t // model.hop)
        if return_logits:
            all_logits.append(logits)
        out[:, t] = pick(logits, uniforms[:, t], opts)
        prev = teacher[:, t] if teacher is not None else out[:, t]
    if return_logits:
        return out, torch.stack(all_logits, dim=2)
    return out


def generate(model: VQVAE, codes: torch.Tensor, speaker: torch.Tensor, num_samples: int | None = None,
             opts: SamplingOptions | None = None, method: str = "fast") -> torch.Tensor:
    """(B, F) codes, (B,) speakers -> (B, T) float waveform in [-1, 1]."""
    classes = generate_classes(model, codes, speaker, num_samples, opts, method)
    return mulaw_decode(classes, model.decoder.cfg.quantization_channels)


def naive_step(model: VQVAE, classes: torch.Tensor, c: torch.Tensor, g: torch.Tensor,
               window: int | None = None) -> torch.Tensor:
    """Logits for the next sample by running the decoder again: (B, t) classes so far -> (B, Q).

    ``window=None`` recomputes the whole prefix (the cost of sample t grows with t);
    ``window=receptive_field`` recomputes only the samples the prediction can see.
    ``c`` (B, C, F) and ``g`` (B, speaker_dim) are the conditioning features.
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


def _generate_naive(model: VQVAE, codes, speaker, T: int, uniforms, opts: SamplingOptions,
                    window: int | None = None) -> torch.Tensor:
    """Recompute the decoder for every sample (see :func:`naive_step`): (B, T) classes."""
    c, g = model.conditioning(model.quantizer.lookup(codes), speaker)
    classes = torch.zeros((codes.shape[0], 0), dtype=torch.long, device=codes.device)
    for t in range(T):
        logits = naive_step(model, classes, c, g, window)
        classes = torch.cat([classes, pick(logits, uniforms[:, t], opts).unsqueeze(1)], dim=1)
    return classes
