"""What every training loop shares (``vqspeech train``, ``train-prior``, ``train-vocoder``): the
process group under torchrun, the device, the learning-rate schedule, mixed precision, resuming
from the newest checkpoint, DistributedDataParallel and the dev clips for tensorboard; and the
CUDA step's options, which ``vqspeech train`` and ``benchmarks/training.py`` both apply.  What a
loop reports (tensorboard, the bar, the throughput) is :mod:`vqspeech.training_log`."""

from __future__ import annotations

import datetime
import math
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from .checkpoint import newest_valid_checkpoint
from .errors import UserError


def learning_rate(step: int, tc) -> float:
    """Linear warm-up, then constant / cosine / step decay to ``min_lr_ratio * lr``."""
    if tc.warmup_steps and step < tc.warmup_steps:
        return tc.lr * (step + 1) / tc.warmup_steps
    if tc.lr_schedule == "none":
        return tc.lr
    progress = min(1.0, (step - tc.warmup_steps) / max(1, tc.max_steps - tc.warmup_steps))
    if tc.lr_schedule == "cosine":
        return tc.lr * (tc.min_lr_ratio + (1 - tc.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
    return tc.lr * (tc.min_lr_ratio if progress >= 0.75 else 1.0 if progress < 0.5 else 0.5 * (1 + tc.min_lr_ratio))


def apply_cuda_options(model, *, gate_kernel: str = "torch", compile_decoder: bool = False,
                       compile_encoder: bool = False, compile_loss: bool = False,
                       amp_residual_stream: bool = False, cudnn_benchmark: bool = False) -> None:
    """Set the CUDA training step's options on ``model`` (a :class:`~vqspeech.models.vqvae.VQVAE`,
    or a WaveNet vocoder, which has no encoder) in place; the names are ``train_conf``'s.  The
    decoder's options apply to a WaveNet decoder only.  The compiles are lazy (they happen at the
    first step) and keep the state dict's names.
    UserError when ``gate_kernel`` needs Triton and it is missing."""
    torch.backends.cudnn.benchmark = cudnn_benchmark  # process-wide: cuDNN times each new shape once
    if compile_encoder and hasattr(model, "encoder"):  # on its own: a whole-model compile breaks at the quantizer
        model.encoder.compile(dynamic=False)
    if model.decoder_kind != "wavenet":
        return
    if gate_kernel != "torch":
        from .generation.triton_backend import unavailable_reason

        if unavailable_reason():
            raise UserError(f"train_conf.gate_kernel {gate_kernel}: {unavailable_reason()}")
    model.decoder.gate_kernel = gate_kernel
    model.decoder.autocast_stream = amp_residual_stream
    if compile_decoder:  # fuses the conditioning add and the gates
        model.decoder.compile(dynamic=False)
    if compile_loss:
        model.decoder.compile_loss()


def prepare_for_cuda(model, tc) -> None:
    """The CUDA training form of ``model`` (a VQ-VAE or a WaveNet vocoder), in place: a WaveNet
    decoder in its channels-last form (the (B, T, C) matrix products: 1.20x the convolution form
    on an H200, benchmarks/training.py), then ``tc``'s (a TrainConfig) step options."""
    if model.decoder_kind == "wavenet":
        model.decoder.upsample = "channels-last"
    apply_cuda_options(model, gate_kernel=tc.gate_kernel, compile_decoder=tc.compile,
                       compile_encoder=tc.compile_encoder, compile_loss=tc.compile_loss,
                       amp_residual_stream=tc.amp_residual_stream, cudnn_benchmark=tc.cudnn_benchmark)


def autocast_dtype(tc, device: torch.device, say: bool = False) -> torch.dtype | None:
    """``train_conf.amp``'s autocast dtype, or None (float32): bf16 and fp16 on CUDA; bf16 also
    on a CPU with native bf16 products (AVX512_BF16, and AMX where there is: 1.7x the recipe
    default's float32 step on the development machine, ``benchmarks/cpu_training.py``).  Elsewhere
    float32, said once when ``say`` (emulated bf16 would be slower than float32)."""
    if tc.amp == "none":
        return None
    if device.type == "cuda":
        return {"bf16": torch.bfloat16, "fp16": torch.float16}[tc.amp]
    if device.type == "cpu" and tc.amp == "bf16":
        from .generation.bf16_cpu_backend import cpu_has_bf16_dot

        if cpu_has_bf16_dot():
            return torch.bfloat16
    if say:
        why = "fp16 autocast is for CUDA" if tc.amp == "fp16" else "this CPU has no native bf16 (AVX512_BF16)"
        print(f"train_conf.amp {tc.amp}: {why}; training in float32", file=sys.stderr)
    return None


def gradient_scaler(dtype: torch.dtype | None):
    """A GradScaler for fp16 autocast (its small range loses small gradients); None otherwise."""
    return torch.amp.GradScaler("cuda") if dtype == torch.float16 else None


def backward_and_step(loss: torch.Tensor, optimizer, scaler, params, grad_clip: float) -> torch.Tensor:
    """Backward, clip the gradient norm to ``grad_clip`` (0: no clipping), step; through ``scaler``
    when there is one.  Returns the norm before clipping (0 without clipping)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip) if grad_clip > 0 else torch.tensor(0.0)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return grad_norm


def training_device(name: str | None, local_rank: int = 0) -> torch.device:
    """The device one training process uses: ``None`` -> cuda:<local rank> when CUDA is there, else
    cpu; ``cuda`` without an index -> cuda:<local rank> (each torchrun process its own GPU).
    UserError for an unknown name or a CUDA device this machine does not have."""
    if name is None:
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device: unknown device {name!r} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA device is available on this machine")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
        if device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise UserError(f"--device {name}: training runs on cpu or cuda")
    return device


class DistContext:
    """Process-group membership from torchrun's environment variables."""

    def __init__(self, device: str | None, timeout_s: float):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = training_device(device, self.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.owned = False
        if self.world_size > 1 and not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
            self.owned = True

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owned and dist.is_initialized():
            dist.destroy_process_group()


def no_buffer_sync() -> dict:
    """DDP keyword that turns off per-forward buffer broadcasts (renamed in newer PyTorch)."""
    import inspect

    params = inspect.signature(torch.nn.parallel.DistributedDataParallel.__init__).parameters
    return {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}


def model_setting_changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """The dotted names of the settings two resolved configs (``to_dict()``) give different values,
    ``train_conf`` left out (how long and how fast to train may change between runs; what the model
    is may not). A key only one side has is not a change: a checkpoint written before a setting
    existed was trained with its default."""
    changes = []
    for key in sorted(set(old) & set(new)):
        if not prefix and key == "train_conf":
            continue
        a, b = old[key], new[key]
        if isinstance(a, dict) and isinstance(b, dict):
            changes += model_setting_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append(f"{prefix}{key}")
    return changes


def resume_newest(model, optimizer, ckpt_dir: Path, kind: str, speakers: list[str], what: str, say: bool,
                  config: dict | None = None) -> int:
    """Load the newest readable step checkpoint of ``kind`` (``"vqvae"``, ``"prior"``, ...) into model
    and optimizer (and the CPU RNG when saved); return its step (0: none). A checkpoint of another
    kind, of other speakers, or (given this run's resolved ``config``) of other model settings is a
    UserError naming it: resuming would go on training another model."""
    found = newest_valid_checkpoint(ckpt_dir)
    if found is None:
        return 0
    ckpt, path = found
    if ckpt.get("kind", "vqvae") != kind or ckpt["speakers"] != speakers:
        raise UserError(f"{path}: not {what} of these speakers (it has {ckpt['speakers']}, the data {speakers}); "
                        f"use a new --exp-dir or --no-resume")
    changed = model_setting_changes(ckpt["config"], config) if config is not None and isinstance(
        ckpt.get("config"), dict) else []
    if changed:
        shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise UserError(f"{path}: was trained with other model settings ({shown}) than this config; use a new "
                        f"--exp-dir (with --init-from to start from these weights) or --no-resume")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise UserError(f"{path}: its weights do not fit this config ({str(exc).splitlines()[0][:160]}); use a new "
                        f"--exp-dir or --no-resume") from None
    optimizer.load_state_dict(ckpt["train_state"]["optimizer"])
    if "rng_cpu" in ckpt["train_state"]:
        torch.set_rng_state(ckpt["train_state"]["rng_cpu"])
    step = int(ckpt["train_state"]["step"])
    if say:
        print(f"resuming from {path} (step {step})")
    return step


def wrap_ddp(model, d: DistContext, sync_buffers: bool = True):
    """``model`` in DistributedDataParallel when there are several processes, else itself."""
    if d.world_size == 1:
        return model
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[d.device.index] if d.device.type == "cuda" else None,
        **({} if sync_buffers else no_buffer_sync()))


def audio_sample_clips(dev_dd, tc, sample_rate: int, hop: int):
    """The dev clips a trainer voices for tensorboard at validation: ``tc.audio_samples`` utterances
    spread over the dev set, each its first ``tc.audio_sample_seconds`` (whole frames of ``hop``
    samples).  Yields (utterance id, (T,) float32 waveform); nothing when either is 0."""
    from .audio import load_audio

    n = int(tc.audio_sample_seconds * sample_rate) // hop * hop
    if tc.audio_samples <= 0 or n == 0:
        return
    for utt in dev_dd.utterances[:: max(1, len(dev_dd.utt2spk) // tc.audio_samples)][: tc.audio_samples]:
        path, start, end = dev_dd.audio_of(utt)
        wav = torch.from_numpy(load_audio(path, sample_rate, start, end))[:n]
        if wav.shape[0] >= hop:
            yield utt, wav[: wav.shape[0] // hop * hop]

