"""How much sample history a trained WaveNet decoder uses, and the folding warm-up that follows.

Folded generation (:func:`vqspeech.conversion.plan_folds`) starts every segment some samples
before its own and drops them: the warm-up.  It starts from the state generation starts from
(empty layer queues, the silence class as the first input), so with a warm-up of ``W`` samples
the segment's first own samples see ``W`` samples of their generated past and, beyond that, the
initial state.  A warm-up of the whole receptive field makes every own sample see what it would
see unfolded; the warm-up is then most of a GPU's work (84% of the steps when ``triton`` cuts
10 s into 512 segments).  A trained decoder usually leans on far less than its receptive field,
and this module measures how much, on real audio under teacher forcing:

- the reference: each crop's ``window`` samples predicted with more history than the receptive
  field (and the conditioning's own context), i.e. as unfolded generation sees them;
- for each candidate ``W``: the same samples predicted with the decoder (and its code
  conditioning) started ``W`` samples, rounded up to whole frames, before the window, which is
  how a folded segment with that warm-up sees them;
- per candidate, the mean KL divergence of its predictive distributions from the reference's,
  in bits per sample over the window (zero when the predictions are the same), and the
  negative log-likelihood of the true samples.

The window is the receptive field by default: the samples a shorter warm-up can change at all
(every later sample sees its true past either way), so the KL is the mean change per affected
sample.  :meth:`HistoryProfile.choose` picks the shortest candidate whose KL, and every longer
candidate's, is within a tolerance; ``vqspeech measure-history --write`` stores it in the
checkpoint, and generation then warms up that much by default (``WaveNet.history_samples``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def candidate_histories(receptive_field: int, hop: int) -> list[int]:
    """0, then whole frames doubling from one (hop, 2 hop, 4 hop, ...) below ``receptive_field``,
    then ``receptive_field`` itself: folding warms up in whole frames, so nothing in between
    differs."""
    out, w = [0], hop
    while w < receptive_field:
        out.append(w)
        w *= 2
    return out + [receptive_field]


# At most 0.0002 bits/sample of KL over the receptive field after the warm-up.  For the mini WaveNet
# it picks 256 samples: free-running (benchmarks/warmup_seams.py), 256 left no mark after the seams
# beyond the full warm-up's that the check could tell from noise, while 128 (KL 0.0005) added
# +0.006 bits/sample there, about 1.5-2 standard errors.  For the 20-layer decoder it picks 512, and
# the free-running KL (vqspeech.fold_divergence) finds 512 adds nothing beyond the full warm-up's
# (-0.0001 +- 0.0002 bits/sample) where no warm-up adds 0.001.
DEFAULT_TOLERANCE_BITS = 0.0002
# Frames of code context the conditioning network needs on each side to be exact (two k=3
# convolutions need 2; 4 leaves room for a wider one).
COND_MARGIN_FRAMES = 4


@dataclass
class HistoryRow:
    samples: int        # history before the window (whole frames: at least this many samples)
    bits: float         # negative log2-likelihood of the true window samples
    kl_bits: float      # mean KL(reference || this) per window sample, in bits


@dataclass
class HistoryProfile:
    rows: list[HistoryRow]
    reference_bits: float   # the reference's negative log2-likelihood
    receptive_field: int
    window: int
    utterances: int

    def choose(self, tolerance_bits: float = DEFAULT_TOLERANCE_BITS) -> int:
        """The shortest history whose KL, and every longer one's, is at most ``tolerance_bits``
        (the receptive field when none below it is)."""
        if not tolerance_bits >= 0:
            raise ValueError(f"the tolerance must be >= 0 bits, got {tolerance_bits}")
        chosen = self.receptive_field
        for row in sorted(self.rows, key=lambda r: -r.samples):
            if row.samples == self.receptive_field:
                continue
            if row.kl_bits > tolerance_bits:
                break
            chosen = row.samples
        return chosen

    def to_record(self, tolerance_bits: float, data: str) -> dict:
        """Plain types for a checkpoint's ``measured_history`` entry (weights_only-safe)."""
        return {"samples": self.choose(tolerance_bits), "tolerance_bits": float(tolerance_bits),
                "window": self.window, "utterances": self.utterances, "data": str(data),
                "reference_bits": self.reference_bits,
                "rows": [[r.samples, r.bits, r.kl_bits] for r in self.rows]}


def crop_layout(receptive_field: int, hop: int, offset: int, window: int | None = None) -> tuple[int, int, int]:
    """(window start, window length, crop length) in samples for :func:`measure_history`: the window
    starts on a frame boundary at least ``offset`` samples in (past leading silence) and after room
    for the longest history plus the conditioning's context; the crop runs a few frames past it."""
    window = receptive_field if window is None else window
    if window < 1:
        raise ValueError(f"the window must be >= 1 sample, got {window}")
    need = (math.ceil(receptive_field / hop) + COND_MARGIN_FRAMES) * hop
    start = math.ceil(max(offset, need) / hop) * hop
    return start, window, start + math.ceil(window / hop) * hop + COND_MARGIN_FRAMES * hop


@torch.no_grad()
def measure_history(model, wav: torch.Tensor, speakers: torch.Tensor, start: int, window: int,
                    histories: list[int] | None = None) -> HistoryProfile:
    """Teacher-forced predictions of ``wav[:, start:start + window]`` with each history.

    ``model``: a WaveNet-decoder VQ-VAE or a WaveNet vocoder; ``wav`` (B, L) float waveforms in
    [-1, 1] (the crops of :func:`crop_layout`), ``speakers`` (B,) the model's speaker indices;
    ``start`` a multiple of the hop.  The codes (a vocoder's log-mel frames) are computed once from the whole crop; each
    history re-runs the conditioning and the decoder from its first frame, as a folded segment does.
    """
    from .audio import mulaw_encode

    dec, hop = model.decoder, model.hop
    rf = dec.receptive_field
    if start % hop:
        raise ValueError(f"the window must start on a frame boundary (hop {hop}), got {start}")
    histories = candidate_histories(rf, hop) if histories is None else sorted(set(histories) | {rf})
    ref_frames = math.ceil(rf / hop) + COND_MARGIN_FRAMES
    if start < ref_frames * hop or wav.shape[1] < start + window:
        raise ValueError(f"crops of {wav.shape[1]} samples cannot hold {ref_frames * hop} samples of history "
                         f"and a window of {window} from sample {start}")
    codes = conditioning_frames(model, wav)
    target = mulaw_encode(wav, dec.cfg.quantization_channels).long()

    def window_log_probs(history_frames: int) -> torch.Tensor:
        f0 = start // hop - history_frames
        c, g = model.code_conditioning(codes[:, f0:], speakers)
        tgt = target[:, f0 * hop:]
        logits = dec(dec.shift_inputs(tgt), c, g, hop)
        skip = start - f0 * hop
        return F.log_softmax(logits[:, :, skip:skip + window].double(), dim=1)  # (B, Q, window)

    truth = target[:, start:start + window]

    def nll_bits(log_p: torch.Tensor) -> float:
        return -log_p.gather(1, truth[:, None, :]).mean().item() / math.log(2)

    ref = window_log_probs(ref_frames)
    p_ref = ref.exp()
    rows = []
    for w in histories:
        log_p = window_log_probs(math.ceil(w / hop))
        kl = (p_ref * (ref - log_p)).sum(1).mean().item() / math.log(2)
        rows.append(HistoryRow(w, nll_bits(log_p), max(kl, 0.0)))
    return HistoryProfile(rows, nll_bits(ref), rf, window, wav.shape[0])


def conditioning_frames(model, wav: torch.Tensor) -> torch.Tensor:
    """What folded generation slices per segment, frames on dim 1: a VQ-VAE's (B, F) codes of the
    (B, T) waveforms, or a WaveNet vocoder's (B, F, n_mels) log-mel frames of them."""
    from .wavenet_vocoder.model import WaveNetVocoder

    return model.log_mel(wav) if isinstance(model, WaveNetVocoder) else model.encode(wav)["codes"]


def load_measured_history(decoder, ckpt: dict, where: str) -> None:
    """Set ``decoder.history_samples`` from a checkpoint's ``measured_history`` entry (None when it
    has none); a :class:`vqspeech.errors.CheckpointError` naming ``where`` for an entry that is not
    one."""
    from .errors import CheckpointError

    record = ckpt.get("measured_history")
    samples = None
    if record is not None:
        samples = record.get("samples") if isinstance(record, dict) else None
        rf = decoder.receptive_field
        if not isinstance(samples, int) or isinstance(samples, bool) or not 0 <= samples <= rf:
            raise CheckpointError(f"{where}: 'measured_history' must hold samples between 0 and the receptive "
                                  f"field {rf}, got {samples!r}")
    decoder.history_samples = samples


def measure_model_history(lm, data_dir: str, utterances: int = 40, offset: int = 8000,
                          window: int | None = None) -> HistoryProfile:
    """:func:`measure_history` for a loaded model (:class:`vqspeech.checkpoint.LoadedModel` or
    :class:`vqspeech.wavenet_vocoder.model.LoadedVocoder`) on the
    first ``utterances`` utterances of a data directory long enough for the crop; ValueError when
    the model has no WaveNet decoder or no utterance is long enough."""
    from .teacher_forcing import load_crops

    model = lm.model
    if getattr(model, "decoder_kind", None) != "wavenet":
        raise ValueError("the model's decoder is not a WaveNet: it generates no samples one by one, so there is "
                         "no warm-up to measure")
    if utterances < 1:
        raise ValueError(f"utterances must be >= 1, got {utterances}")
    start, window, length = crop_layout(model.decoder.receptive_field, model.hop, offset, window)
    wav, speakers = load_crops(lm, data_dir, utterances, length, pad=False)
    device = next(model.parameters()).device
    return measure_history(model, wav.to(device), speakers.to(device), start, window)
