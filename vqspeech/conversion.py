"""Encoding, decoding and voice conversion of whole utterances, with folded batching.

Folded batching (for one long utterance): the code sequence is cut at code boundaries into
``S`` segments that are generated as one batch.  Each segment after the first starts
``warmup`` frames early (the decoder's receptive field, or the history its checkpoint was
measured to use: :func:`warmup_samples`), so by the time it reaches its own span its queues
hold the history it uses; the samples just before that span are
cross-faded with the previous segment's tail.  A single file thus uses the batch (and the
threads) that generation would otherwise leave idle.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from .generation import SamplingOptions, generate
from .models import VQVAE
from .pitch import MAX_INTONATION, with_intonation


@dataclass
class FoldPlan:
    """Segment layout in frames: ``starts[i]`` is where segment i's input begins, every
    segment is ``length`` frames long, and segment i owns frames [cores[i], cores[i+1])."""

    starts: list[int]
    cores: list[int]
    length: int
    warmup: int


def plan_folds(num_frames: int, hop: int, receptive_field: int, max_batch: int = 16,
               crossfade: int | None = None, min_core_factor: float = 4, warmup_samples: int | None = None
               ) -> FoldPlan:
    """Choose segments for ``num_frames`` frames.

    ``warmup`` frames cover the receptive field (or ``warmup_samples``, when given) plus the
    cross-fade (``hop`` samples by default).  Segments are only split off while each keeps at
    least ``min_core_factor`` times the warm-up as its own, so the wasted warm-up work stays
    under ~25 % with the default 4; a GPU backend, whose width is free, uses 0 (any core of at
    least one frame).  A warm-up shorter than the receptive field starts a segment's own
    samples from a history that is partly the segment's initial silence instead of its
    generated past: ``vqspeech measure-history`` (:mod:`vqspeech.decoder_history`) measures
    what that changes for a trained decoder.
    """
    crossfade = hop if crossfade is None else crossfade
    if warmup_samples is not None and warmup_samples < 0:
        raise ValueError(f"warmup_samples must be >= 0, got {warmup_samples}")
    context = receptive_field if warmup_samples is None else warmup_samples
    warmup = math.ceil((context + crossfade) / hop)
    n = max(1, min(max_batch, num_frames // max(1, math.ceil(min_core_factor * warmup))))
    core = math.ceil(num_frames / n)
    n = math.ceil(num_frames / core)
    cores = [i * core for i in range(n)] + [num_frames]
    starts = [0] + [max(0, c - warmup) for c in cores[1:-1]]  # a segment near the start starts at 0
    length = core + (warmup if n > 1 else 0)
    return FoldPlan(starts, cores, length, warmup)


def warmup_samples(decoder, warmup: int | str | None) -> int:
    """Samples of warm-up per folded segment: ``warmup`` when a number; ``"full"`` the decoder's
    receptive field; None the history its checkpoint was measured to use
    (``decoder.history_samples``, ``vqspeech measure-history``), else the receptive field."""
    if warmup == "full":
        return decoder.receptive_field
    if warmup is None:
        measured = getattr(decoder, "history_samples", None)
        return decoder.receptive_field if measured is None else measured
    if isinstance(warmup, str) or warmup < 0:
        raise ValueError(f"warmup must be a number of samples >= 0, 'full' or None, got {warmup!r}")
    return warmup


def _pad_codes(codes: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """codes[start:start+length] ((F,) codes or (F, bins) vocoder frames), padded at the end by
    repeating the last row."""
    seg = codes[start:start + length]
    if seg.shape[0] < length:
        seg = torch.cat([seg, seg[-1:].expand(length - seg.shape[0], *seg.shape[1:])])
    return seg


def speaker_batch(model: VQVAE, speakers: list, device) -> torch.Tensor:
    """Targets as the model takes them: ids (ints) -> (N,) int64; when any is a reference embedding
    ((256,) array from :func:`vqspeech.speaker_reference.reference_embedding`) -> (N, 256) float, ids
    standing for their training speaker's mean d-vector."""
    if all(isinstance(s, (int, np.integer)) for s in speakers):
        return torch.tensor([int(s) for s in speakers], dtype=torch.long, device=device)
    if not getattr(model, "reference", False):
        raise ValueError("this model conditions on a table of training speakers; reference audio needs a model "
                         "trained with speaker_conditioning: reference")
    rows = [model.speaker_refs[int(s)].cpu() if isinstance(s, (int, np.integer))
            else torch.as_tensor(np.asarray(s), dtype=torch.float32) for s in speakers]
    return torch.stack(rows).to(device)


@torch.no_grad()
def decode_codes(model: VQVAE, codes: torch.Tensor, speaker, opts: SamplingOptions | None = None,
                 method: str = "numba", fold: bool = True, max_batch: int | None = None,
                 crossfade: int | None = None, vocoder="griffin-lim", *, warmup: int | str | None = None,
                 pitch: torch.Tensor | None = None) -> np.ndarray:
    """(F,) codes of one utterance + speaker (a training speaker's index, or a (256,) reference
    embedding for a reference model) -> (F * hop,) float32 waveform.

    A WaveNet model samples with ``method`` (folded into segments unless ``fold`` is false); a
    spectral model predicts all frames at once and ``vocoder`` (``"griffin-lim"`` or a
    :class:`vqspeech.vocoders.WaveNetVocoding`) turns them into audio (the sampling options
    then only seed the vocoder).  ``warmup``: samples of warm-up per folded segment, ``"full"``
    for the receptive field (default: what :func:`warmup_samples` picks; see :func:`plan_folds`).
    ``pitch``: (3, F') source pitch features for a spectral ``source_pitch`` model
    (:meth:`~vqspeech.models.SpectralVQVAE.source_pitch`; None: unknown, codes alone).
    """
    opts = opts or SamplingOptions()
    device = next(model.parameters()).device
    if model.decoder_kind == "spectral":
        from .vocoders import frames_to_audio

        F = codes.shape[0]
        pitch = None if pitch is None else pitch.to(device)[None]
        frames = model.frames(codes.to(device)[None], speaker_batch(model, [speaker], device), pitch)
        wav = frames_to_audio(model, frames, vocoder, seed=opts.seed, speakers=[speaker])[0].cpu().numpy()
        wav = wav.astype(np.float32)
        return np.pad(wav, (0, max(0, F * model.hop - len(wav))))[: F * model.hop]
    return decode_many(model, [codes], [speaker], opts, method, fold, max_batch, crossfade, warmup=warmup)[0]


@dataclass
class FoldedSegments:
    """What folded generation drew before stitching: segment ``k`` of utterance ``u`` is row
    ``offsets[u] + k`` of ``samples`` ((N, T) float waveforms, each from its segment's first
    frame ``plans[u].starts[k]``), generated from ``codes`` ((N, length) or (N, length, bins)
    frames) in the voices ``speakers`` (N entries, as :func:`speaker_batch` takes them)."""

    plans: list[FoldPlan]
    offsets: list[int]
    codes: torch.Tensor
    speakers: list
    samples: np.ndarray


@torch.no_grad()
def generate_segments(model: VQVAE, codes: list[torch.Tensor], speakers: list, opts: SamplingOptions | None = None,
                      method: str = "numba", fold: bool = True, max_batch: int | None = None,
                      crossfade: int | None = None, *, warmup: int | str | None = None) -> FoldedSegments:
    """The first half of :func:`decode_many`: fold every utterance and generate all segments of all
    utterances as one batch."""
    from .generation import get_backend

    opts = opts or SamplingOptions()
    hop = model.hop
    device = next(model.parameters()).device
    backend = get_backend(method)
    max_batch = max_batch or backend.default_fold()
    xf = hop if crossfade is None else crossfade
    plans = []
    for c in codes:
        F = c.shape[0]
        if not fold or F < 2:
            plans.append(FoldPlan([0], [0, F], F, 0))
        else:
            plans.append(plan_folds(F, hop, model.decoder.receptive_field, max_batch, xf,
                                    min_core_factor=backend.min_core_factor,
                                    warmup_samples=warmup_samples(model.decoder, warmup)))
    length = max(p.length for p in plans)
    batch = torch.stack([_pad_codes(c.to(device), s, length) for c, p in zip(codes, plans) for s in p.starts])
    seg_speakers = [sp for sp, p in zip(speakers, plans) for _ in p.starts]
    spk = speaker_batch(model, seg_speakers, device)
    # samples up to the end of the longest segment's own span (the rest is padding)
    T = max((p.cores[i + 1] - s) * hop for p in plans for i, s in enumerate(p.starts))
    segs = generate(model, batch, spk, num_samples=max(T, 1), opts=opts, method=method).cpu().numpy()
    offsets = np.cumsum([0] + [len(p.starts) for p in plans])[:-1].tolist()
    return FoldedSegments(plans, offsets, batch, seg_speakers, segs)


def stitch_segments(folded: FoldedSegments, hop: int, crossfade: int | None = None) -> list[np.ndarray]:
    """The second half of :func:`decode_many`: each utterance's (F_u * hop,) waveform from its
    segments' own spans, the ``crossfade`` samples (default ``hop``) before each seam a raised-cosine
    blend of the two segments that meet there."""
    xf = hop if crossfade is None else crossfade
    segs = folded.samples
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(xf) + 0.5) / xf)).astype(np.float32)  # raised cosine
    outs = []
    for plan, k in zip(folded.plans, folded.offsets):
        out = np.zeros(plan.cores[-1] * hop, dtype=np.float32)
        for i, start in enumerate(plan.starts):
            a, b = plan.cores[i] * hop, plan.cores[i + 1] * hop
            off = start * hop
            out[a:b] = segs[k + i, a - off:b - off]
            if i > 0 and xf > 0:
                prev_off = plan.starts[i - 1] * hop
                lo = a - xf
                out[lo:a] = (1 - ramp) * segs[k + i - 1, lo - prev_off:a - prev_off] + ramp * segs[k + i, lo - off:a - off]
        outs.append(out)
    return outs


@torch.no_grad()
def decode_many(model: VQVAE, codes: list[torch.Tensor], speakers: list, opts: SamplingOptions | None = None,
                method: str = "numba", fold: bool = True, max_batch: int | None = None,
                crossfade: int | None = None, *, warmup: int | str | None = None) -> list[np.ndarray]:
    """WaveNet models: utterances' (F_i,) codes + speaker indices -> their (F_i * hop,) waveforms.

    Every utterance is folded into segments (``max_batch`` per utterance, default the
    backend's ``default_fold()``) and all segments of all utterances are generated as one batch,
    which is how a GPU backend gets the width it needs.  Segments share one length (the
    longest); shorter ones are padded with their last code and the padding is dropped.
    """
    folded = generate_segments(model, codes, speakers, opts, method, fold, max_batch, crossfade, warmup=warmup)
    return stitch_segments(folded, model.hop, crossfade)


@torch.no_grad()
def encode_wav(model: VQVAE, wav: np.ndarray, chunk_seconds: float = 60.0, sample_rate: int = 16000,
               return_features: bool = False):
    """(T,) waveform -> (ceil(T / hop),) codes [and (F, D) continuous encoder outputs].

    Long inputs are encoded in chunks (with a context margin on each side, then trimmed),
    so memory stays bounded for hour-long files.
    """
    hop = model.hop
    chunk = max(hop, int(chunk_seconds * sample_rate) // hop * hop)
    margin = encoder_margin(model)

    def blocks():
        for start in range(0, len(wav), chunk):
            lo, hi = max(0, start - margin), min(len(wav), start + chunk + margin)
            yield start, min(chunk, len(wav) - start), wav[lo:hi]

    return _encode_blocks(model, blocks(), margin, return_features)


_ENCODER_MARGIN_HOPS = 16  # at least this much context on each side of a block


def encoder_margin(model) -> int:
    """Samples of context kept on each side of an encoding block: the encoder's whole receptive
    field (rounded up to hops, at least 16), so a code near a block edge sees what it would see in
    one pass (wide encoders, e.g. the log-mel one, see 46 hops)."""
    hops = max(_ENCODER_MARGIN_HOPS, math.ceil(model.encoder.receptive_field / model.hop) + 1)
    return hops * model.hop


def _encode_blocks(model: VQVAE, blocks, margin: int, return_features: bool):
    """Encode overlapping blocks ``(offset, owned samples, samples from offset - margin)``; keep each
    block's own frames and concatenate: (F,) codes [and (F, D) features]."""
    device = next(model.parameters()).device
    hop = model.hop
    codes, feats = [], []
    for offset, owned, samples in blocks:
        lo = max(0, offset - margin)
        enc = model.encode(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).to(device)[None])
        first = (offset - lo) // hop
        n = math.ceil(owned / hop)
        codes.append(enc["codes"][0, first:first + n].cpu())
        if return_features:
            feats.append(enc["z"][0, :, first:first + n].t().cpu())
    codes_t = torch.cat(codes)
    if return_features:
        return codes_t, torch.cat(feats).numpy()
    return codes_t


@torch.no_grad()
def encode_file(model: VQVAE, path, sample_rate: int, chunk_seconds: float = 30.0, return_features: bool = False):
    """Encode an audio file of any length in bounded memory (streamed in chunks).

    Returns (F,) codes [and (F, D) features], equal to :func:`encode_wav` on the whole file.
    """
    from .audio import stream_audio

    margin = encoder_margin(model)
    blocks = stream_audio(path, sample_rate, int(chunk_seconds * sample_rate), margin, multiple=model.hop)
    return _encode_blocks(model, blocks, margin, return_features)


def require_one_code(wav: np.ndarray, hop: int, sample_rate: int, name) -> None:
    """UserError naming ``name`` when ``wav`` (T,) is shorter than one code (``hop`` samples)."""
    from .errors import UserError

    if len(wav) < hop:
        raise UserError(f"{name}: {len(wav)} samples ({1000 * len(wav) / sample_rate:.1f} ms) is shorter than one "
                        f"code of this model ({hop} samples, {1000 * hop / sample_rate:.1f} ms); nothing to convert")


def check_intonation(model: VQVAE, intonation: float | None, name: str = "intonation") -> None:
    """UserError when ``intonation`` (see :func:`convert`) is out of range, or asks a model without
    ``decoder_conf.source_pitch`` to follow or drop a pitch it never reads."""
    from .errors import UserError

    if intonation == 1.0:
        return
    if not model.uses_source_pitch:
        raise UserError(f"{name} {'none' if intonation is None else f'{intonation:g}'}: this model does not read "
                        "the source's pitch (train one with decoder_conf.source_pitch: true, e.g. "
                        "egs/mini/conf/default_pitch.yaml)")
    if intonation is not None and not 0.0 <= intonation <= MAX_INTONATION:
        raise UserError(f"{name}: expected 'none' or a scale within [0, {MAX_INTONATION:g}], got {intonation:g}")


@dataclass
class ConversionResult:
    wav: np.ndarray
    codes: torch.Tensor
    seconds: float            # wall time, encode + decode
    audio_seconds: float

    @property
    def real_time_factor(self) -> float:
        """Audio seconds produced per wall-clock second (> 1 is faster than real time)."""
        return self.audio_seconds / max(self.seconds, 1e-9)


def convert(model: VQVAE, wav: np.ndarray, speaker, sample_rate: int, opts: SamplingOptions | None = None,
            method: str = "numba", fold: bool = True, max_batch: int | None = None,
            vocoder="griffin-lim", *, warmup: int | str | None = None,
            intonation: float | None = 1.0) -> ConversionResult:
    """Encode ``wav`` (T,) and decode its codes with ``speaker`` (an index or a reference embedding):
    the converted (T,) waveform.

    A ``source_pitch`` model also follows ``wav``'s intonation, its contour scaled by
    ``intonation`` (:func:`vqspeech.pitch.with_intonation`: 1 as spoken, 0 a monotone, 2 twice as
    lively); ``intonation=None`` decodes the codes alone, the pitch left to the model. A model
    without ``source_pitch`` takes only the default 1.0 (it cannot follow any other)."""
    t0 = time.perf_counter()
    check_intonation(model, intonation)
    codes = encode_wav(model, wav, sample_rate=sample_rate)
    pitch = None
    if model.uses_source_pitch and intonation is not None:
        device = next(model.parameters()).device
        pitch = model.source_pitch(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)).to(device)[None])[0]
        if intonation != 1.0:
            pitch = with_intonation(pitch, intonation)
    out = decode_codes(model, codes, speaker, opts, method, fold, max_batch, vocoder=vocoder, warmup=warmup,
                       pitch=pitch)[: len(wav)]
    seconds = time.perf_counter() - t0
    return ConversionResult(out, codes, seconds, len(wav) / sample_rate)
