"""``vqspeech train-vocoder``: the WaveNet vocoder's training loop, with the VQ-VAE loop's habits.

Trains on ground-truth log-mel frames of random crops of a data directory (any corpus).
Writes ``exp/config.yaml`` (resolved), ``exp/checkpoints/step_*.pt`` (full state, atomic),
``exp/vocoder.pt`` (the model for conversion), ``exp/tensorboard/`` and
``exp/vocoder_summary.json``. Resumes from the newest readable checkpoint; batches are a pure
function of (seed, step), so N steps + resume + N steps equals 2N. Under torchrun it wraps
the model in DistributedDataParallel (gloo on CPU, nccl on CUDA); only rank 0 writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoint import save_training_checkpoints
from ..errors import UserError
from ..kaldi_data_dir import read_data_dir
from ..training_log import RunLog
from ..training_runtime import (DistContext, audio_sample_clips, autocast_dtype, backward_and_step,
                                gradient_scaler, learning_rate, prepare_for_cuda, resume_newest, wrap_ddp)
from ..training_crops import CropBatches
from .config import VocoderConfig, save_vocoder_config
from .model import VOCODER_KIND, WaveNetVocoder


@dataclass
class VocoderResult:
    step: int
    train_nats: float = float("nan")     # last logged teacher-forced cross-entropy, nats per sample
    dev_nats: float | None = None
    throughput: float = 0.0              # audio seconds trained on per wall second (all ranks), at the last log
    steady_throughput: float | None = None  # the same from the end of the first log window on
    model: WaveNetVocoder | None = None
    summary: dict = field(default_factory=dict)


def train_vocoder(cfg: VocoderConfig, train_data, dev_data, exp_dir, *, resume: bool = True,
                  device: str | None = None, progress: bool = True, dist_timeout_s: float = 600.0,
                  until_step: int | None = None) -> VocoderResult:
    """Train (or resume) a WaveNet vocoder on the audio of ``train_data``; ``until_step`` stops
    early without changing the schedule (``train_conf.max_steps``)."""
    tc = cfg.train_conf
    train_dd = read_data_dir(train_data)
    dev_dd = read_data_dir(dev_data) if dev_data else None
    speakers = train_dd.speakers
    if dev_dd is not None and cfg.use_speaker and set(dev_dd.speakers) - set(speakers):
        raise UserError(f"{dev_data}: speakers {sorted(set(dev_dd.speakers) - set(speakers))} are not in the "
                        f"training data {train_data}")
    hop = cfg.features.frame_hop
    segment = tc.segment_samples // hop * hop
    if segment < hop:
        raise UserError(f"train_conf.segment_samples ({tc.segment_samples}) is shorter than frame_hop ({hop})")
    d = DistContext(device, dist_timeout_s)
    try:
        return _train(cfg, train_dd, dev_dd, speakers, segment, Path(exp_dir), d, resume, progress,
                      min(until_step or tc.max_steps, tc.max_steps))
    finally:
        d.close()


def _payload(cfg: VocoderConfig, speakers: list[str], model: WaveNetVocoder) -> dict:
    return {"kind": VOCODER_KIND, "config": cfg.to_dict(), "speakers": speakers, "sample_rate": cfg.sample_rate,
            "hop": cfg.features.frame_hop, "model": model.state_dict()}


def _train(cfg, train_dd, dev_dd, speakers, segment, exp_dir: Path, d: DistContext, resume: bool, progress: bool,
           last_step: int) -> VocoderResult:
    tc = cfg.train_conf
    torch.manual_seed(tc.seed)
    model = WaveNetVocoder(cfg, len(speakers)).to(d.device)
    if d.device.type == "cuda":  # the VQ-VAE trainer's CUDA form and train_conf's step options
        prepare_for_cuda(model, tc)
    params = list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=tc.lr)
    ckpt_dir = exp_dir / "checkpoints"
    step = resume_newest(model, optimizer, ckpt_dir, VOCODER_KIND, speakers, "a WaveNet vocoder",
                         d.is_main and progress, cfg.to_dict()) if resume else 0
    if d.is_main:
        exp_dir.mkdir(parents=True, exist_ok=True)
        save_vocoder_config(exp_dir / "config.yaml", cfg)
    net = wrap_ddp(model, d)
    batches = CropBatches(train_dd, speakers, cfg.sample_rate, tc.batch_size, segment, tc.seed, d.rank,
                          d.world_size, tc.preload)
    # batch i is a function of (seed, i) alone, so workers (train_conf.num_workers) change nothing
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=range(step, last_step),
                                         num_workers=tc.num_workers, pin_memory=d.device.type == "cuda")
    amp_dtype = autocast_dtype(tc, d.device, say=d.is_main)
    scaler = gradient_scaler(amp_dtype)
    log = RunLog(d, exp_dir, progress, tc.max_steps, step, "train-vocoder")
    result = VocoderResult(step=step, model=model)
    window, window_n = torch.zeros((), device=d.device), 0
    model.train()
    for wav, spk in loader:
        wav, spk = wav.to(d.device, non_blocking=True), spk.to(d.device, non_blocking=True)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, tc)
        with torch.autocast(d.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = net(wav, spk)["loss"]
        backward_and_step(loss, optimizer, scaler, params, tc.grad_clip)
        step += 1
        log.step_done(wav.numel() * d.world_size / cfg.sample_rate)
        window += loss.detach()
        window_n += 1
        if step % tc.log_every == 0 or step == last_step:
            result.train_nats = float(window) / window_n  # waits for the device, so the meter counts its work
            window.zero_()
            window_n = 0
            result.throughput = log.end_window({"vocoder/train_nats_per_sample": result.train_nats,
                                                "lr": learning_rate(step - 1, tc)}, step,
                                               nats=f"{result.train_nats:.3f}")
            result.steady_throughput = log.steady
        if dev_dd is not None and d.is_main and (step % tc.val_every == 0 or step == last_step):
            result.dev_nats = validate_vocoder(model, dev_dd, speakers, cfg, segment, d.device)
            log.scalars({"vocoder/dev_nats_per_sample": result.dev_nats}, step)
            if log.writer is not None:
                _log_audio(log.writer, model, dev_dd, speakers, cfg, step, d.device)
            model.train()
        if step % tc.checkpoint_every == 0 or step == last_step:
            if d.is_main:
                save_training_checkpoints(exp_dir, "vocoder.pt", _payload(cfg, speakers, model),
                                          {"step": step, "optimizer": optimizer.state_dict(),
                                           "rng_cpu": torch.get_rng_state()}, tc.keep_checkpoints)
            d.barrier()
    log.close()
    result.step = step
    if log.should_summarise(step):
        result.summary = {"step": step, "train_nats_per_sample": result.train_nats,
                          "dev_nats_per_sample": result.dev_nats, "wall_seconds": log.meter.wall_seconds(),
                          "steps_this_run": step - log.start_step,
                          "throughput_audio_seconds_per_second": result.throughput,
                          "steady_throughput_audio_seconds_per_second": result.steady_throughput}
        log.write_summary(exp_dir / "vocoder_summary.json", result.summary)
    return result


@torch.no_grad()
def _log_audio(writer, model: WaveNetVocoder, dev_dd, speakers: list[str], cfg: VocoderConfig, step: int,
               device) -> None:
    """A few dev clips voiced from their own real frames (what the vocoder is for), beside the originals."""
    from ..generation import SamplingOptions, default_method, generate

    index = {s: i for i, s in enumerate(speakers)}
    model.eval()
    for utt, wav in audio_sample_clips(dev_dd, cfg.train_conf, cfg.sample_rate, model.hop):
        wav = wav.to(device)
        frames = model.log_mel(wav.unsqueeze(0))  # (1, F, n_mels)
        spk = torch.tensor([index[dev_dd.utt2spk[utt]] if cfg.use_speaker else 0], device=device)
        gen = generate(model, frames, spk, wav.shape[0], SamplingOptions(seed=step), method=default_method(device))
        writer.add_audio(f"audio/{utt}/original", wav.cpu(), step, sample_rate=cfg.sample_rate)
        writer.add_audio(f"audio/{utt}/generated", gen[0].cpu(), step, sample_rate=cfg.sample_rate)


@torch.no_grad()
def validate_vocoder(model: WaveNetVocoder, dev_dd, speakers: list[str], cfg: VocoderConfig, segment: int,
                     device) -> float:
    """Teacher-forced cross-entropy (nats per sample) over fixed crops of the dev set."""
    model.eval()
    tc = cfg.train_conf
    data = CropBatches(dev_dd, speakers if cfg.use_speaker else sorted(set(dev_dd.speakers) | set(speakers)),
                       cfg.sample_rate, tc.batch_size, segment, seed=tc.seed + 1, preload=False)
    n = min(tc.val_batches, max(1, math.ceil(len(data.utts) / tc.batch_size)))
    total = 0.0
    for i in range(n):
        wav, spk = data[i]
        if not cfg.use_speaker:
            spk = torch.zeros_like(spk)
        total += model(wav.to(device), spk.to(device))["loss"].item() / n
    return total
