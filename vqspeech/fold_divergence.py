"""How far folded generation's samples after each seam are from what the unfolded decoder would draw.

:mod:`vqspeech.decoder_history` measures the folding warm-up under teacher forcing: true audio
goes in, and the KL between predictions with a short and with a long history comes out.
Generation feeds the decoder its own samples instead, so this module measures the same KL on
the folded generator's own output:

- fold and generate real codes with a warm-up (:func:`vqspeech.conversion.generate_segments`)
  and stitch the segments into each utterance's waveform ``y``;
- the folded generator's predictive distribution at each sample ``t`` of segment ``k``'s own
  span: the decoder teacher-forced on segment ``k``'s own samples from its first frame (its
  warm-up and what follows), i.e. what it drew ``y[t]`` from;
- the unfolded decoder's: teacher-forced on ``y`` from the utterance's start, so at ``t`` it
  sees the previous segment, the cross-fade and segment ``k``'s samples before ``t``;
- per sample, KL(folded || unfolded) in bits, averaged over the receptive field that follows
  each seam (the samples whose predictions the seam can change; later ones see the same
  samples either way and their KL is zero).

Both sides are the float32 model, so a backend's own rounding is not counted.  The expectation
over ``y`` of the summed per-sample KL bounds how far the folded output's distribution is from
the unfolded decoder's (a segment's draws also depend on its discarded warm-up, which ``y`` does
not show).  Every sample's KL is exact given the path, so the check's noise is the paths'
spread alone, unlike a comparison of likelihoods between independently generated waveforms.
Even the full warm-up leaves a KL: a segment continues its own warm-up, not the previous
segment's samples, and the cross-fade blends the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .audio import mulaw_encode
from .conversion import generate_segments, speaker_batch, stitch_segments, warmup_samples
from .decoder_history import COND_MARGIN_FRAMES
from .generation import SamplingOptions


@dataclass
class SeamDivergence:
    warmup: int                 # warm-up samples per segment
    kl_bits: float              # mean KL(folded || unfolded) per sample of the windows, in bits
    per_utterance: np.ndarray   # (B,) the same mean per utterance (NaN for one without a seam)
    samples: int                # window samples counted
    seams: int
    per_seam: list              # per utterance, per seam: (W,) KL in bits of each window sample
    waveforms: list             # the stitched (F_u * hop,) waveforms the KL was measured on
    bits: list                  # per utterance, (F_u * hop,) -log2 p of each stitched sample, unfolded


def _log_probs(model, targets: torch.Tensor, codes: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
    """(B, T) sample classes, (B, F) codes with F * hop >= T, model-ready speakers -> (B, Q, T)
    float64 log-probabilities of each sample given the samples before it (teacher forcing)."""
    dec = model.decoder
    c, g = model.code_conditioning(codes, speakers)
    logits = dec(dec.shift_inputs(targets), c, g, model.hop)
    return F.log_softmax(logits.double(), dim=1)


@torch.no_grad()
def seam_divergence(model, codes: list[torch.Tensor], speakers: list, warmup: int | str | None,
                    opts: SamplingOptions | None = None, method: str = "numba", max_batch: int | None = None,
                    crossfade: int | None = None) -> SeamDivergence:
    """Fold and generate each utterance's (F_u,) ``codes`` in its voice (``speakers``: training
    speaker indices or reference embeddings, as :func:`vqspeech.conversion.decode_many` takes them)
    with ``warmup`` samples per segment (``"full"``, a number, or None for the checkpoint's measured
    history), and measure the mean KL(folded || unfolded) per sample over one receptive field after
    each seam (cut short where the segment's own span ends).  ``model``: a WaveNet-decoder VQ-VAE."""
    if getattr(model, "decoder_kind", None) != "wavenet":
        raise ValueError("the model's decoder is not a WaveNet: it has no folding seams to measure")
    hop, rf = model.hop, model.decoder.receptive_field
    q = model.decoder.cfg.quantization_channels
    device = next(model.parameters()).device
    n = warmup_samples(model.decoder, warmup)
    folded = generate_segments(model, codes, speakers, opts, method, True, max_batch, crossfade, warmup=n)
    waves = stitch_segments(folded, hop, crossfade)
    per_utt, per_seam, bits, total, count, seams = [], [], [], 0.0, 0, 0
    for u, (plan, k0, y) in enumerate(zip(folded.plans, folded.offsets, waves)):
        spk_u = speaker_batch(model, [speakers[u]], device)
        y_classes = mulaw_encode(torch.from_numpy(y)[None].to(device), q).long()
        full = _log_probs(model, y_classes, codes[u][None].to(device), spk_u)[0]      # (Q, T_u)
        bits.append((-full.gather(0, y_classes) / math.log(2))[0].cpu().numpy())
        if len(plan.starts) < 2:
            per_utt.append(float("nan"))
            per_seam.append([])
            continue
        ks = list(range(k0 + 1, k0 + len(plan.starts)))
        # Only each segment's samples up to its window's end matter (the decoder is causal); the
        # conditioning's non-causal convolutions keep a few frames beyond it.
        length = max(min((plan.cores[i] * hop + rf), plan.cores[i + 1] * hop) - plan.starts[i] * hop
                     for i in range(1, len(plan.starts)))
        seg_wav = torch.from_numpy(folded.samples[ks, :length]).to(device)
        seg_targets = mulaw_encode(seg_wav, q).long()
        seg_codes = folded.codes[ks][:, :math.ceil(length / hop) + COND_MARGIN_FRAMES]
        own = _log_probs(model, seg_targets, seg_codes, speaker_batch(model, [folded.speakers[k] for k in ks], device))
        kl_sum, kl_n, utt_seams = 0.0, 0, []
        for j, i in enumerate(range(1, len(plan.starts))):
            a, b = plan.cores[i] * hop, plan.cores[i + 1] * hop
            end = min(a + rf, b)
            off = plan.starts[i] * hop
            lp_fold = own[j, :, a - off:end - off]                                   # (Q, W)
            lp_full = full[:, a:end]
            kl = (lp_fold.exp() * (lp_fold - lp_full)).sum(0).clamp_min(0) / math.log(2)
            utt_seams.append(kl.cpu().numpy())
            kl_sum += kl.sum().item()
            kl_n += kl.numel()
        per_utt.append(kl_sum / kl_n)
        per_seam.append(utt_seams)
        total += kl_sum
        count += kl_n
        seams += len(plan.starts) - 1
    return SeamDivergence(n, total / count if count else float("nan"), np.array(per_utt), count, seams, per_seam,
                          waves, bits)


@dataclass
class WarmupDivergence:
    """One warm-up's free-running KL, over every (seed, utterance) pair with a seam."""
    warmup: int
    kl_bits: float      # mean of the pairs' mean KL after the seams, bits/sample
    kl_se: float        # its standard error over the pairs (NaN for fewer than two)
    extra_bits: float   # mean of the pairs' KL minus the full warm-up's on the same pair
    extra_se: float
    pairs: int          # (seed, utterance) pairs with a seam under both warm-ups


def _mean_se(v: np.ndarray) -> tuple[float, float]:
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")


class WarmupComparison:
    """The free-running KL after the seams for several warm-ups, each paired with the full warm-up's.

    The same utterances in the same voices and the same seeds under every warm-up: the KL of a
    (seed, utterance) pair minus the full warm-up's on the same pair cancels what the two share
    (the utterance's content and voice).  The paths differ between warm-ups, though, and for the
    20-layer decoder most of the spread is theirs: its paired standard error (0.00028 bits/sample
    at 40 utterances) is about either KL's own.  Each warm-up is generated once, when first asked
    for (generation is the cost: ``measure-history --free-running`` took 5.2 min for 40 utterances,
    one seed and two warm-ups of the 20-layer decoder on 2 CPU cores).
    """

    def __init__(self, model, codes: list[torch.Tensor], speakers: list, seeds: list[int],
                 method: str = "numba", max_batch: int | None = None, crossfade: int | None = None,
                 temperature: float = 1.0):
        if not seeds:
            raise ValueError("at least one seed is needed")
        self.model, self.codes, self.speakers, self.seeds = model, codes, speakers, list(seeds)
        self.method, self.max_batch, self.crossfade, self.temperature = method, max_batch, crossfade, temperature
        self.receptive_field = model.decoder.receptive_field
        self._runs: dict[int, list[SeamDivergence]] = {}

    def runs(self, warmup: int) -> list[SeamDivergence]:
        """The :func:`seam_divergence` of each seed with ``warmup`` samples (generated once)."""
        if warmup not in self._runs:
            self._runs[warmup] = [
                seam_divergence(self.model, self.codes, self.speakers, warmup,
                                SamplingOptions(temperature=self.temperature, seed=s), self.method,
                                self.max_batch, self.crossfade)
                for s in self.seeds]
        return self._runs[warmup]

    def per_pair(self, warmup: int) -> np.ndarray:
        """(seeds * B,) each (seed, utterance) pair's mean KL after its seams (NaN: no seam)."""
        return np.concatenate([r.per_utterance for r in self.runs(warmup)])

    def kl(self, warmup: int) -> tuple[float, float]:
        """The mean over (seed, utterance) pairs with a seam of their KL after the seams, and its
        standard error (NaN for fewer than two pairs; both NaN for none)."""
        kl = self.per_pair(warmup)
        return _mean_se(kl[~np.isnan(kl)])

    def row(self, warmup: int) -> WarmupDivergence:
        """``warmup``'s KL and its excess over the full warm-up's (generating that too)."""
        kl, full = self.per_pair(warmup), self.per_pair(self.receptive_field)
        both = ~np.isnan(kl) & ~np.isnan(full)
        mean, se = self.kl(warmup)
        extra, extra_se = _mean_se(kl[both] - full[both])
        return WarmupDivergence(warmup, mean, se, extra, extra_se, int(both.sum()))

    def confirm(self, candidates: list[int], tolerance_bits: float) -> tuple[int, list[WarmupDivergence]]:
        """The first of ``candidates`` (in increasing order, generating each in turn) whose mean KL
        beyond the full warm-up's is at most ``tolerance_bits`` (the receptive field when none
        is), and the rows measured on the way, the full warm-up's (the reference) last.  A noisy
        mean, not a significance test: more seeds or utterances shrink the standard errors."""
        rows, chosen = [], self.receptive_field
        for w in sorted(c for c in set(candidates) if c < self.receptive_field):
            rows.append(self.row(w))
            if rows[-1].extra_bits <= tolerance_bits:  # NaN (no seam anywhere) never passes
                chosen = w
                break
        return chosen, rows + [self.row(self.receptive_field)]
