"""Warm start: begin a VQ-VAE training from another model's weights (fine-tuning).

``train_conf.init_from`` (``vqspeech train --init-from CKPT``) names a VQ-VAE checkpoint, e.g. the
shipped ``vqspeech/pretrained/mini.pt`` or an ``exp/<tag>/checkpoint.pt``. A training that starts
at step 0 loads its weights and buffers (the codebook and its EMA statistics included, so the
k-means initialisation is not redone); the optimizer and the learning-rate schedule start afresh,
and a training that resumes from its own checkpoints ignores ``init_from``.

Speakers are matched by name. Tensors indexed by speaker (the speaker table, the adversary's
output layer) are found by building the model for one more speaker and seeing which shapes
grow; their rows of the speakers both models know are copied, and a speaker the checkpoint never
heard keeps its fresh row. Any other tensor must have the checkpoint's shape: a config whose
layers differ is an error naming the tensor. Tensors only one side has (a speaker adversary
added or dropped) keep their fresh values or are left out, and are listed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from .errors import UserError


@dataclass
class WarmStart:
    """What :func:`warm_start` did: tensors loaded whole or by speaker row, the speakers whose
    rows came from the checkpoint and those that start fresh, and tensors only one side has."""

    loaded: int = 0
    by_speaker: list[str] = field(default_factory=list)
    shared_speakers: list[str] = field(default_factory=list)
    new_speakers: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)       # in this model, not in the checkpoint
    dropped: list[str] = field(default_factory=list)     # in the checkpoint, not in this model

    def describe(self, path) -> str:
        parts = [f"initialised from {path}: {self.loaded} tensors"]
        if self.by_speaker:
            parts.append(f"speaker rows of {', '.join(self.shared_speakers) or 'no speaker'}"
                         + (f" (new: {', '.join(self.new_speakers)})" if self.new_speakers else ""))
        if self.fresh:
            parts.append(f"fresh: {', '.join(self.fresh)}")
        if self.dropped:
            parts.append(f"not used: {', '.join(self.dropped)}")
        return "; ".join(parts)


def speaker_indexed(cfg, num_speakers: int) -> set[str]:
    """Names of the state tensors whose first dimension is the speaker count (found by building the
    model for ``num_speakers`` and one more speaker; a speaker count in another dimension is an error)."""
    from .models import build_model

    with torch.random.fork_rng(devices=[]):  # the probe models must not move the training's random stream
        a = build_model(cfg, num_speakers).state_dict()
        b = build_model(cfg, num_speakers + 1).state_dict()
    names = {k for k in a if a[k].shape != b[k].shape}
    for k in names:
        if a[k].shape[1:] != b[k].shape[1:] or b[k].shape[0] != a[k].shape[0] + 1:
            raise RuntimeError(f"{k}: indexed by speaker in a dimension other than the first")
    return names


@torch.no_grad()
def warm_start(model: torch.nn.Module, cfg, speakers: list[str], path: str | os.PathLike) -> WarmStart:
    """Load the checkpoint at ``path`` into ``model`` (built from ``cfg`` for ``speakers``), as the
    module docstring says. A UserError names the checkpoint and the first tensor that does not fit."""
    from .checkpoint import load_checkpoint
    from .errors import CheckpointError

    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as exc:
        raise UserError(f"--init-from {exc}") from None
    if ckpt.get("kind", "vqvae") != "vqvae":
        raise UserError(f"--init-from {path}: is a {ckpt['kind']} checkpoint, not a VQ-VAE model")
    if int(ckpt.get("sample_rate", cfg.sample_rate)) != cfg.sample_rate:
        raise UserError(f"--init-from {path}: its model runs at {ckpt['sample_rate']} Hz, this config at "
                        f"{cfg.sample_rate} Hz")
    theirs, state = list(ckpt["speakers"]), ckpt["model"]
    rows = speaker_indexed(cfg, len(speakers))
    own = model.state_dict()
    done = WarmStart(shared_speakers=[s for s in speakers if s in theirs],
                     new_speakers=[s for s in speakers if s not in theirs])
    for name, tensor in own.items():
        if name not in state:
            done.fresh.append(name)
            continue
        src = state[name]
        if name in rows:
            if src.shape[1:] != tensor.shape[1:] or src.shape[0] != len(theirs):
                raise UserError(f"--init-from {path}: {name} is {tuple(src.shape)} there, "
                                f"{tuple(tensor.shape)} in this config's model")
            for i, spk in enumerate(speakers):
                if spk in theirs:
                    tensor[i].copy_(src[theirs.index(spk)])
            done.by_speaker.append(name)
        elif src.shape != tensor.shape:
            raise UserError(f"--init-from {path}: {name} is {tuple(src.shape)} there, {tuple(tensor.shape)} "
                            f"in this config's model (a different architecture)")
        else:
            tensor.copy_(src)
        done.loaded += 1
    done.dropped = [k for k in state if k not in own]
    model.load_state_dict(own)  # the copies went into own's tensors; this re-reads the quantizer's host mirrors
    return done
