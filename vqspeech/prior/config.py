"""Prior configuration: one YAML (``conf/prior.yaml``), the same strict checking as the VQ-VAE's::

    model: {layers: 4, dim: 192, heads: 4, ffn: 768, dropout: 0.1, context: 256}
    train_conf: {batch_size: 16, max_steps: 2000, lr: 1.0e-3}
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import yaml

from ..config import _build, read_config_data
from ..errors import ConfigError
from ..fileio import atomic_write


@dataclass
class PriorModelConfig:
    """A causal transformer over codes, the speaker added to every position."""

    layers: int = 4
    dim: int = 192
    heads: int = 4
    ffn: int = 768
    dropout: float = 0.1
    context: int = 256        # codes the model sees (about 1 s at 250 codes/s)

    def check(self) -> None:
        if min(self.layers, self.dim, self.heads, self.ffn) < 1 or self.dim % self.heads:
            raise ConfigError("model: layers, dim, heads, ffn must be >= 1 and dim a multiple of heads")
        if self.context < 2:
            raise ConfigError("model.context: must be >= 2")
        if not 0 <= self.dropout < 1:
            raise ConfigError("model.dropout: must be in [0, 1)")


@dataclass
class PriorTrainConfig:
    batch_size: int = 16
    max_steps: int = 2000
    lr: float = 1.0e-3
    lr_schedule: str = "cosine"       # none | cosine | step (as the VQ-VAE's)
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 50
    val_every: int = 500
    checkpoint_every: int = 250
    keep_checkpoints: int = 3
    amp: str = "none"                 # none | bf16 | fp16: autocast on CUDA (as the VQ-VAE's); the loss in float32

    def check(self) -> None:
        if self.amp not in ("none", "bf16", "fp16"):
            raise ConfigError(f"train_conf.amp: must be none, bf16 or fp16, got {self.amp!r}")
        if self.lr_schedule not in ("none", "cosine", "step"):
            raise ConfigError(f"train_conf.lr_schedule: must be none, cosine or step, got {self.lr_schedule!r}")
        for name in ("batch_size", "max_steps", "log_every", "val_every", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train_conf.{name}: must be >= 1")
        if not self.lr > 0:
            raise ConfigError("train_conf.lr: must be > 0")


@dataclass
class PriorConfig:
    model: PriorModelConfig = field(default_factory=PriorModelConfig)
    train_conf: PriorTrainConfig = field(default_factory=PriorTrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def prior_config_from_dict(data: dict | None, source: str = "prior config") -> PriorConfig:
    try:
        return _build(PriorConfig, data or {}, "")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_prior_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> PriorConfig:
    """The prior's config in ``path`` (None: the defaults), with ``--set`` overrides."""
    return prior_config_from_dict(*read_config_data(path, overrides, "prior config"))


def save_prior_config(path: str | os.PathLike, cfg: PriorConfig) -> None:
    with atomic_write(path) as fh:
        yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False)
