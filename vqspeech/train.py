"""Training loop: one CPU to many GPUs (torchrun + DistributedDataParallel).

``vqspeech train --config conf/default.yaml --train-data data/train --dev-data data/dev --exp-dir exp/default``

- Writes ``exp/config.yaml`` (resolved), ``exp/checkpoints/step_*.pt`` (full training state),
  ``exp/checkpoint.pt`` (the model for inference), ``exp/tensorboard/`` and
  ``exp/train_summary.json``.  Only rank 0 writes.
- Resumes from the newest readable checkpoint by default; because batches are a pure
  function of (seed, step), N steps + resume + N steps equals 2N steps in one go.
- Under torchrun (``WORLD_SIZE`` > 1) it joins the process group (gloo on CPU, nccl on
  CUDA) with a timeout, so a dead peer ends the job instead of hanging it.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from .checkpoint import save_training_checkpoints
from .config import ExperimentConfig, save_config
from .training_crops import CropBatches, ReferenceCrops
from .kaldi_data_dir import read_data_dir
from .errors import UserError
from .models import VQVAE, build_model
from .models.quantizer import perplexity_from_counts
from .training_log import RunLog
from .training_runtime import (DistContext, audio_sample_clips, autocast_dtype, backward_and_step, gradient_scaler,
                               learning_rate, prepare_for_cuda, resume_newest, wrap_ddp)


@dataclass
class TrainResult:
    step: int
    final: dict = field(default_factory=dict)      # last logged training metrics
    validation: dict = field(default_factory=dict)
    throughput: float = 0.0                          # audio seconds processed per wall second (all ranks)
    # the same from the end of the first log window on, which holds the one-off costs (compiles,
    # cuDNN's timing, the loader's start); None until a second window ends
    steady_throughput: float | None = None
    model: VQVAE | None = None


def train(cfg: ExperimentConfig, train_data: str | os.PathLike, dev_data: str | os.PathLike | None,
          exp_dir: str | os.PathLike, *, resume: bool = True, device: str | None = None,
          progress: bool = True, dist_timeout_s: float = 600.0, until_step: int | None = None) -> TrainResult:
    """Train a VQ-VAE; return the final step, metrics and (unwrapped) model.

    ``until_step`` stops early (checkpointing there) without changing the schedule, which
    is defined by ``train_conf.max_steps``: training in chunks equals training in one go.
    """
    exp_dir = Path(exp_dir)
    tc = cfg.train_conf
    d = DistContext(device, dist_timeout_s)
    try:
        return _train(cfg, tc, d, Path(train_data), Path(dev_data) if dev_data else None, exp_dir, resume, progress,
                      min(until_step or tc.max_steps, tc.max_steps))
    finally:
        d.close()


def _train(cfg, tc, d: DistContext, train_dir: Path, dev_dir: Path | None, exp_dir: Path, resume: bool,
           progress: bool, last_step: int) -> TrainResult:
    """The loop, as named parts: data, build + resume, per step (lr, step, metrics, epoch code
    statistics, validation, checkpoint), summary."""
    train_dd, dev_dd, speakers, segment = _read_data(cfg, train_dir, dev_dir)
    model, params, optimizer = _build(cfg, len(speakers), d.device, tc)
    ckpt_dir = exp_dir / "checkpoints"
    start_step = _resume(model, optimizer, ckpt_dir, speakers, d.is_main and progress, cfg) if resume else 0
    if start_step == 0 and tc.init_from:
        from .warm_start import warm_start

        started = warm_start(model, cfg, speakers, tc.init_from)
        if d.is_main and progress:
            print(started.describe(tc.init_from))
    if d.is_main:
        _prepare_exp_dir(exp_dir, ckpt_dir, cfg)
    bank = None
    if cfg.speaker_conditioning == "reference":
        from .speaker_reference import ReferenceBank

        bank = ReferenceBank.build(train_dd, speakers, cfg.sample_rate, exp_dir / "speaker_refs.pt",
                                   say=d.is_main and progress)
        model.speaker_refs.copy_(bank.means().to(d.device))
    ddp_model = _wrap_ddp(model, d)
    batches = CropBatches(train_dd, speakers, cfg.sample_rate, tc.batch_size, segment, tc.seed,
                          d.rank, d.world_size, tc.preload)
    ref_crops = ReferenceCrops(batches) if cfg.speaker_conditioning == "learned" else None
    parallel = _parallel_targets(cfg, model, batches, train_dd, train_dir, d.is_main and progress)
    pitch_stats = _utterance_pitch_stats(model, batches, d.device, say=d.is_main and progress)
    # the partners' crops too, for parallel code agreement
    partner_code_hop = model.hop if parallel is not None and cfg.decoder_conf.parallel_code_weight > 0 else None
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=range(start_step, last_step),
                                         num_workers=tc.num_workers, pin_memory=d.device.type == "cuda")
    amp_dtype = autocast_dtype(tc, d.device, say=d.is_main)
    scaler = gradient_scaler(amp_dtype)
    log = RunLog(d, exp_dir, progress, tc.max_steps, start_step, "train")

    result = TrainResult(step=start_step, model=model)
    window = MetricWindow()
    epochs = EpochCodeStats(cfg.quantizer_conf.num_codes, d.device, int(batches.epoch_of(start_step)))
    step = start_step
    model.train()
    for wav, spk in loader:
        wav = wav.to(d.device, non_blocking=True)
        spk = spk.to(d.device, non_blocking=True)
        lr = learning_rate(step, tc)
        for group in optimizer.param_groups:
            group["lr"] = lr
        ref = None
        if bank is not None:
            ref = bank.draw(spk, tc.seed, step, d.rank).to(d.device)
        elif ref_crops is not None:
            ref = ref_crops.draw(step).to(d.device, non_blocking=True)
        par = None if parallel is None else tuple(t.to(d.device, non_blocking=True)
                                                  for t in parallel.draw(step, partner_code_hop))
        crop_stats = None if pitch_stats is None else pitch_stats[batches.utterance_indices(step)]
        out, grad_norm = _optimise(ddp_model, optimizer, scaler, params, wav, spk, amp_dtype, d.device, tc.grad_clip,
                                   ref, par, crop_stats)
        step += 1
        log.step_done(wav.numel() * d.world_size / cfg.sample_rate)
        window.add(out, grad_norm)
        epochs.add(out["counts"].detach())
        if step % tc.log_every == 0 or step == tc.max_steps:
            avg = window.flush()  # waits for the device, so the throughput counts its work
            avg["lr"] = lr
            result.throughput = log.end_window(avg, step, recon=f"{avg['loss/recon']:.3f}",
                                               ppl=f"{avg['vq/perplexity']:.1f}", codes=f"{avg['vq/codes_used']:.0f}")
            result.steady_throughput = log.steady
            avg["throughput/audio_seconds_per_second"] = result.throughput
            result.final = avg
        epochs.end_epoch_if_new(int(batches.epoch_of(step)), step, log, sync=d.world_size > 1 and not model.quantizer.ema)
        validating = dev_dd is not None and (step % tc.val_every == 0 or step == tc.max_steps) and d.is_main
        saving = (step % tc.checkpoint_every == 0 or step == last_step) and d.is_main
        if ref_crops is not None and (validating or saving):
            _learned_speaker_means(model, ref_crops, len(speakers))
        if validating:
            result.validation = validate(model, dev_dd, speakers, cfg, segment, d.device)
            log.scalars({f"val/{k}": v for k, v in result.validation.items()}, step)
            if log.writer is not None:
                _log_audio(log.writer, model, dev_dd, speakers, cfg, step, d.device)
            model.train()
        if step % tc.checkpoint_every == 0 or step == last_step:
            if d.is_main:
                _save(exp_dir, model, optimizer, cfg, speakers, step, tc.keep_checkpoints)
            d.barrier()
    log.close()
    result.step = step
    if log.should_summarise(step):
        _write_summary(log, exp_dir, result, d, step - start_step)
    return result


# --- the parts ------------------------------------------------------------------------------------
def _parallel_targets(cfg, model, batches: CropBatches, train_dd, train_dir: Path, say: bool):
    """The partners' aligned frames of ``decoder_conf.parallel_weight`` / ``parallel_code_weight``
    (None when both are off): by transcript (DTW) or by ``utt2origin`` (``parallel_partners``)."""
    d = cfg.decoder_conf
    if cfg.decoder != "spectral" or (d.parallel_weight <= 0 and d.parallel_code_weight <= 0):
        return None
    from .parallel_targets import ParallelTargets

    text = origin = None
    if d.parallel_partners == "origin":
        from .corpus_prep.voice_shift import UTT2ORIGIN, read_origins

        origin, source = read_origins(train_dir, train_dd.utterances), train_dir / UTT2ORIGIN
    elif not train_dd.text:
        raise UserError(f"{train_dir / 'text'}: decoder_conf.parallel_weight / parallel_code_weight need the "
                        f"training transcripts (or parallel_partners: origin, with voice-shifted copies)")
    else:
        text, source = train_dd.text, train_dir / "text"
    t0 = time.perf_counter()
    with torch.no_grad():
        def frames_of(wav):
            return model.target_frames(torch.from_numpy(wav)[None].to(next(model.parameters()).device))[0].cpu().numpy()

        def pitch_of(wav):  # a source_pitch model decodes its partners with their own intonation
            return model.source_pitch(torch.from_numpy(wav)[None].to(next(model.parameters()).device))[0].cpu().numpy()

        targets = ParallelTargets(batches, text, frames_of, cfg.decoder_conf.frame_hop, origin=origin,
                                  pitch_of=pitch_of if model.uses_source_pitch else None)
    if targets.coverage == 0:
        what = "no utterance has a copy by another speaker" if origin else "no transcript is read by two speakers"
        raise UserError(f"{source}: decoder_conf.parallel_weight / parallel_code_weight: {what}")
    if say:
        print(f"parallel targets: {100 * targets.coverage:.0f}% of utterances have a partner "
              f"({time.perf_counter() - t0:.0f} s)")
    return targets


@torch.no_grad()
def _learned_speaker_means(model, ref_crops: ReferenceCrops, num_speakers: int) -> None:
    """A ``learned`` model's ``speaker_refs``: each training speaker's mean embedding by its current
    speaker encoder (unit norm), so validation and conversion by id use the encoder as trained."""
    was_training = model.training
    model.eval()
    device = model.speaker_refs.device
    for s in range(num_speakers):
        e = model.speaker_encoder(ref_crops.speaker_clips(s).to(device)).mean(0)
        model.speaker_refs[s] = e / e.norm().clamp(min=1e-8)
    model.train(was_training)


def _read_data(cfg, train_dir: Path, dev_dir: Path | None):
    """(train data dir, dev data dir or None, speakers, crop length in samples)."""
    train_dd = read_data_dir(train_dir)
    speakers = train_dd.speakers
    dev_dd = read_data_dir(dev_dir) if dev_dir else None
    if dev_dd is not None:
        unknown = sorted(set(dev_dd.speakers) - set(speakers))
        if unknown:
            raise UserError(f"{dev_dir}: speakers {unknown} are not in the training data {train_dir}")
    hop = cfg.sample_multiple
    segment = (cfg.train_conf.segment_samples // hop) * hop
    if segment < hop:
        raise UserError(f"train_conf.segment_samples ({cfg.train_conf.segment_samples}) is shorter than the hop ({hop})")
    return train_dd, dev_dd, speakers, segment


def _build(cfg, num_speakers: int, device, tc):
    """(model, trainable parameters, Adam); the same initial weights on every rank (seeded)."""
    torch.manual_seed(tc.seed)
    model = build_model(cfg, num_speakers).to(device)
    if device.type == "cuda":
        prepare_for_cuda(model, tc)
    params = [p for p in model.parameters() if p.requires_grad]
    # Adam(fused=True) measured no faster on an H200 (benchmarks/training.py), so the plain one
    return model, params, torch.optim.Adam(params, lr=tc.lr)


def _resume(model, optimizer, ckpt_dir: Path, speakers: list[str], say: bool, cfg) -> int:
    return resume_newest(model, optimizer, ckpt_dir, "vqvae", speakers, "a VQ-VAE", say, cfg.to_dict())


def _prepare_exp_dir(exp_dir: Path, ckpt_dir: Path, cfg) -> None:
    exp_dir.mkdir(parents=True, exist_ok=True)
    save_config(exp_dir / "config.yaml", cfg)
    for stale in ckpt_dir.glob(".*.tmp") if ckpt_dir.is_dir() else []:
        stale.unlink(missing_ok=True)  # a write cut off by SIGKILL; the renamed files are complete


def _wrap_ddp(model, d: DistContext):
    return wrap_ddp(model, d, sync_buffers=False)  # the quantizer synchronises its own buffers


def _optimise(model, optimizer, scaler, params, wav, spk, amp_dtype, device, grad_clip: float, reference=None,
              parallel=None, pitch_stats=None):
    """One forward / backward / update; returns (model outputs, gradient norm before clipping).
    ``reference`` (B, 256): d-vectors that condition the decoder instead of the speaker ids;
    ``parallel``: :meth:`vqspeech.parallel_targets.ParallelTargets.draw`'s tensors;
    ``pitch_stats`` (B, 2): the crops' utterances' log-F0 mean and spread (:func:`_utterance_pitch_stats`)."""
    extra = {} if pitch_stats is None else {"pitch_stats": pitch_stats}
    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        if parallel is not None:
            out = model(wav, spk, reference, parallel=parallel, **extra)
        else:
            out = model(wav, spk, **extra) if reference is None else model(wav, spk, reference, **extra)
    return out, backward_and_step(out["loss"], optimizer, scaler, params, grad_clip)


class MetricWindow:
    """Sums of the logged metrics since the last flush, kept on the device (a per-step .item()
    would synchronise the GPU every step)."""

    NAMES = {"loss/total": "loss", "loss/recon": "recon_loss", "loss/vq": "vq_loss", "loss/commit": "commit_loss",
             "loss/codebook": "codebook_loss", "loss/speaker_adversary": "adversary_loss",
             "loss/delta": "delta_loss", "loss/gan": "gan_loss", "loss/feature_matching": "feature_matching_loss",
             "loss/critic": "critic_loss", "loss/content_consistency": "content_consistency_loss",
             "loss/parallel": "parallel_loss", "loss/parallel_code": "parallel_code_loss",
             "vq/perplexity": "perplexity", "vq/codes_used": "codes_used"}

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.n = 0

    def add(self, out: dict, grad_norm: torch.Tensor) -> None:
        values = {k: out[v] for k, v in self.NAMES.items() if v in out}  # delta, gan: spectral models only
        values["grad_norm"] = grad_norm
        for k, v in values.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.n += 1

    def flush(self) -> dict[str, float]:
        avg = {k: float(v) / self.n for k, v in self.sums.items()}
        self.sums, self.n = {}, 0
        return avg


class EpochCodeStats:
    """Code usage over a whole pass of the training data: perplexity and codes used per epoch."""

    def __init__(self, num_codes: int, device, epoch: int):
        self.counts = torch.zeros(num_codes, device=device)
        self.epoch = epoch

    def add(self, counts: torch.Tensor) -> None:
        self.counts += counts

    def end_epoch_if_new(self, epoch: int, step: int, log: RunLog, sync: bool) -> None:
        if epoch == self.epoch:
            return
        if sync:  # the VQ quantizer's counts are per rank; EMA counts are already all-reduced
            dist.all_reduce(self.counts)
        log.scalars({"vq_epoch/perplexity": float(perplexity_from_counts(self.counts)),
                     "vq_epoch/codes_used": float((self.counts > 0).sum())}, step)
        self.counts.zero_()
        self.epoch = epoch


def _write_summary(log: RunLog, exp_dir: Path, result: TrainResult, d: DistContext, steps: int) -> None:
    summary = {"step": result.step, "throughput_audio_seconds_per_second": result.throughput,
               "steady_throughput_audio_seconds_per_second": result.steady_throughput,
               "wall_seconds_this_run": log.meter.wall_seconds(), "steps_this_run": steps,
               "final": result.final, "validation": result.validation, "world_size": d.world_size,
               "device": str(d.device)}
    log.write_summary(exp_dir / "train_summary.json", summary)


def _save(exp_dir: Path, model: VQVAE, optimizer, cfg: ExperimentConfig, speakers: list[str], step: int,
          keep: int) -> None:
    common = {"config": cfg.to_dict(), "speakers": speakers, "sample_rate": cfg.sample_rate,
              "hop": cfg.encoder_conf.hop, "model": model.state_dict()}
    state = {"step": step, "optimizer": optimizer.state_dict(), "rng_cpu": torch.get_rng_state()}
    save_training_checkpoints(exp_dir, "checkpoint.pt", common, state, keep)


@torch.no_grad()
def _utterance_pitch_stats(model: VQVAE, batches: CropBatches, device: torch.device,
                           indices: list[int] | None = None, say: bool = False) -> torch.Tensor | None:
    """(N, 2) on ``device``: the log-F0 mean and spread of each of ``batches``' utterances
    (``indices``, by default all N; :meth:`SpectralVQVAE.pitch_stats`), which a
    ``source_pitch_normalisation: utterance`` model normalises its crops' contours with; None for
    any other model. One F0 track per utterance: for training, once, before it."""
    if not model.normalises_pitch_per_utterance:
        return None
    t0 = time.perf_counter()
    indices = range(len(batches.utts)) if indices is None else indices
    stats = torch.cat([model.pitch_stats(torch.from_numpy(batches.audio(i)).to(device)[None]) for i in indices])
    if say:
        print(f"pitch normalised per utterance: {len(stats)} F0 tracks ({time.perf_counter() - t0:.0f} s)")
    return stats


@torch.no_grad()
def validate(model: VQVAE, dev_dd, speakers: list[str], cfg: ExperimentConfig, segment: int,
             device: torch.device) -> dict[str, float]:
    """Mean losses and code statistics over fixed crops of the dev set (same crops every time)."""
    model.eval()
    tc = cfg.train_conf
    data = CropBatches(dev_dd, speakers, cfg.sample_rate, tc.batch_size, segment, seed=tc.seed + 1,
                       preload=False)
    n_batches = min(tc.val_batches, max(1, math.ceil(len(data.utts) / tc.batch_size)))
    totals: dict[str, float] = {}
    counts = torch.zeros(cfg.quantizer_conf.num_codes, device=device)
    for i in range(n_batches):
        wav, spk = data[i]
        stats = _utterance_pitch_stats(model, data, device, data.utterance_indices(i))   # as in training
        out = model(wav.to(device), spk.to(device), **({} if stats is None else {"pitch_stats": stats}))
        for k in ("loss", "recon_loss", "commit_loss"):
            totals[k] = totals.get(k, 0.0) + out[k].item() / n_batches
        counts += out["counts"]
    totals["perplexity"] = float(perplexity_from_counts(counts))
    totals["codes_used"] = float((counts > 0).sum())
    return totals


def _log_audio(writer, model: VQVAE, dev_dd, speakers, cfg, step: int, device) -> None:
    """A few real generations (codes of a dev utterance, decoded with its own speaker)."""
    from .generation import SamplingOptions, default_method, generate
    from .vocoders import frames_to_audio

    index = {s: i for i, s in enumerate(speakers)}
    for utt, wav in audio_sample_clips(dev_dd, cfg.train_conf, cfg.sample_rate, model.hop):
        wav = wav.to(device)
        codes = model.encode(wav.unsqueeze(0))["codes"]
        spk = torch.tensor([index[dev_dd.utt2spk[utt]]], device=device)
        if model.decoder_kind == "spectral":
            gen = frames_to_audio(model, model.frames(codes, spk), "griffin-lim", seed=step)
        else:
            gen = generate(model, codes, spk, wav.shape[0], SamplingOptions(seed=step), method=default_method(device))
        writer.add_audio(f"audio/{utt}/original", wav.cpu(), step, sample_rate=cfg.sample_rate)
        writer.add_audio(f"audio/{utt}/generated", gen[0].cpu(), step, sample_rate=cfg.sample_rate)
