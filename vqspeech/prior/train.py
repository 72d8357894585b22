"""``vqspeech train-prior``: the prior's training loop, with the VQ-VAE loop's habits.

Writes ``exp/config.yaml`` (resolved), ``exp/checkpoints/step_*.pt`` (full state, atomic),
``exp/prior.pt`` (the model for sampling), ``exp/tensorboard/`` and ``exp/prior_summary.json``.
Resumes from the newest readable checkpoint; batches are a pure function of (seed, step), so
N steps + resume + N steps equals 2N.  Under torchrun it wraps the model in
DistributedDataParallel (gloo on CPU, nccl on CUDA); only rank 0 writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoint import save_training_checkpoints
from ..training_log import RunLog
from ..training_runtime import (DistContext, autocast_dtype, backward_and_step, gradient_scaler, learning_rate,
                                resume_newest, wrap_ddp)
from .config import PriorConfig, save_prior_config
from .data import IGNORE, CodeCorpus, crop_batch
from .evaluate import cross_entropy_bits
from .model import CodePrior

PRIOR_KIND = "prior"


@dataclass
class PriorSource:
    """What the prior inherits from its VQ-VAE: the code inventory and the speakers."""

    num_codes: int
    speakers: list[str]
    sample_rate: int
    hop: int


@dataclass
class PriorResult:
    step: int
    train_bits: float = float("nan")       # last logged training cross-entropy, bits per code
    dev_bits: float | None = None
    throughput: float = 0.0              # seconds of audio (as codes) trained on per wall second, at the last log
    steady_throughput: float | None = None  # the same from the end of the first log window on
    model: CodePrior | None = None
    summary: dict = field(default_factory=dict)


def train_prior(cfg: PriorConfig, source: PriorSource, train: CodeCorpus, dev: CodeCorpus | None, exp_dir,
                *, resume: bool = True, device: str | None = None, progress: bool = True,
                dist_timeout_s: float = 600.0, until_step: int | None = None) -> PriorResult:
    exp_dir = Path(exp_dir)
    tc = cfg.train_conf
    d = DistContext(device, dist_timeout_s)
    try:
        return _train(cfg, source, train, dev, exp_dir, d, resume, progress, min(until_step or tc.max_steps,
                                                                                  tc.max_steps))
    finally:
        d.close()


def _payload(cfg: PriorConfig, source: PriorSource, model: CodePrior) -> dict:
    return {"kind": PRIOR_KIND, "config": cfg.to_dict(), "speakers": source.speakers,
            "sample_rate": source.sample_rate, "hop": source.hop, "num_codes": source.num_codes,
            "model": model.state_dict()}


def _train(cfg, source, train, dev, exp_dir: Path, d: DistContext, resume: bool, progress: bool, last_step: int):
    tc = cfg.train_conf
    torch.manual_seed(tc.seed)
    model = CodePrior(source.num_codes, len(source.speakers), cfg.model).to(d.device)
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=0.01)
    ckpt_dir = exp_dir / "checkpoints"
    step = resume_newest(model, optimizer, ckpt_dir, PRIOR_KIND, source.speakers, "a prior of this model's codes",
                         d.is_main and progress, cfg.to_dict()) if resume else 0
    if d.is_main:
        exp_dir.mkdir(parents=True, exist_ok=True)
        save_prior_config(exp_dir / "config.yaml", cfg)
    net = wrap_ddp(model, d)
    log = RunLog(d, exp_dir, progress, tc.max_steps, step, "train-prior")
    result = PriorResult(step=step, model=model)
    window_nats, window_n = torch.zeros((), device=d.device), torch.zeros((), device=d.device)
    amp_dtype = autocast_dtype(tc, d.device, say=d.is_main)
    scaler = gradient_scaler(amp_dtype)
    # the audio a batch's codes stand for (crops shorter than the context pad with IGNORE; counted whole)
    batch_audio_seconds = tc.batch_size * cfg.model.context * d.world_size * source.hop / source.sample_rate
    model.train()
    while step < last_step:
        inputs, targets, spk = crop_batch(train, tc.batch_size, cfg.model.context, tc.seed, step, d.rank)
        inputs, targets, spk = inputs.to(d.device), targets.to(d.device), spk.to(d.device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, tc)
        with torch.autocast(d.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = net(inputs, spk)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)
        backward_and_step(loss, optimizer, scaler, params, tc.grad_clip)
        step += 1
        log.step_done(batch_audio_seconds)
        n = (targets != IGNORE).sum()
        window_nats += loss.detach() * n
        window_n += n
        if step % tc.log_every == 0 or step == last_step:
            result.train_bits = (window_nats / window_n.clamp(min=1)).item() / math.log(2)
            window_nats.zero_()
            window_n.zero_()
            result.throughput = log.end_window({"prior/train_bits_per_code": result.train_bits,
                                                "lr": learning_rate(step - 1, tc)}, step,
                                               bits=f"{result.train_bits:.3f}")
            result.steady_throughput = log.steady
        if dev is not None and d.is_main and (step % tc.val_every == 0 or step == last_step):
            result.dev_bits = cross_entropy_bits(model, dev, d.device)
            log.scalars({"prior/dev_bits_per_code": result.dev_bits}, step)
            model.train()
        if step % tc.checkpoint_every == 0 or step == last_step:
            if d.is_main:
                save_training_checkpoints(exp_dir, "prior.pt", _payload(cfg, source, model),
                                          {"step": step, "optimizer": optimizer.state_dict(),
                                           "rng_cpu": torch.get_rng_state()},  # dropout's draws
                                          tc.keep_checkpoints)
            d.barrier()
    log.close()
    result.step = step
    if log.should_summarise(step):
        result.summary = {"step": step, "train_bits_per_code": result.train_bits, "dev_bits_per_code": result.dev_bits,
                          "wall_seconds": log.meter.wall_seconds(), "steps_this_run": step - log.start_step,
                          "codes_per_second_of_audio": source.sample_rate / source.hop,
                          "throughput_audio_seconds_per_second": result.throughput,
                          "steady_throughput_audio_seconds_per_second": result.steady_throughput}
        log.write_summary(exp_dir / "prior_summary.json", result.summary)
    return result
