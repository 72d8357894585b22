"""WaveNet vocoder configuration: one YAML (``conf/vocoder.yaml``), checked as strictly as the VQ-VAE's::

    features: {n_mels: 80, n_fft: 1024, frame_hop: 256}       # must equal the spectral model's
    decoder_conf: {layers: 10, residual_channels: 32, gate_channels: 32, skip_channels: 64}
    train_conf: {batch_size: 8, segment_samples: 4096, max_steps: 2000, lr: 1.0e-3}
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import yaml

from ..config import DecoderConfig, TrainConfig, _build, read_config_data, require_at_least, require_positive
from ..errors import ConfigError
from ..fileio import atomic_write


@dataclass
class MelFeaturesConfig:
    """The log-mel frames the vocoder reads: those of a spectral model with ``features: mel``."""

    n_mels: int = 80
    n_fft: int = 1024
    frame_hop: int = 256
    min_magnitude: float = 1.0e-5

    def check(self) -> None:
        require_positive(self, "features", "min_magnitude")
        if self.n_fft < 16 or self.n_fft & (self.n_fft - 1):
            raise ConfigError(f"features.n_fft: must be a power of two >= 16, got {self.n_fft}")
        if not 1 <= self.n_mels <= self.n_fft // 2 + 1:
            raise ConfigError(f"features.n_mels: must be in [1, n_fft / 2 + 1], got {self.n_mels}")
        if not 1 <= self.frame_hop <= self.n_fft:
            raise ConfigError(f"features.frame_hop: must be in [1, n_fft], got {self.frame_hop}")


def _default_decoder() -> DecoderConfig:
    # The mini WaveNet's size (conf/wavenet.yaml): a receptive field of 1,024 samples.
    return DecoderConfig(layers=10, dilation_cycle=10, residual_channels=32, gate_channels=32, skip_channels=64,
                         speaker_dim=16, cond_channels=64)


def _default_train() -> TrainConfig:
    return TrainConfig(batch_size=8, segment_samples=4096, max_steps=2000, lr=1.0e-3)


@dataclass
class VocoderConfig:
    sample_rate: int = 16000
    features: MelFeaturesConfig = field(default_factory=MelFeaturesConfig)
    # Non-causal kernel-3 convolutions over the frames before the WaveNet: each sample's
    # conditioning sees this many frames on either side of its own.
    cond_layers: int = 2
    # false: one shared voice (the frames alone say whose it is), so the vocoder serves any speaker.
    use_speaker: bool = True
    decoder_conf: DecoderConfig = field(default_factory=_default_decoder)
    train_conf: TrainConfig = field(default_factory=_default_train)

    def check(self) -> None:
        require_at_least(self, "", 1, "sample_rate")
        if self.cond_layers < 1:
            raise ConfigError(f"cond_layers: must be >= 1, got {self.cond_layers}")
        if self.train_conf.compile_encoder:
            raise ConfigError("train_conf.compile_encoder: a vocoder has no encoder (its frames come from the audio)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def vocoder_config_from_dict(data: dict | None, source: str = "vocoder config") -> VocoderConfig:
    data = dict(data or {})
    # Nested defaults differ from the dataclasses' own, so start from them and overlay the YAML.
    base = VocoderConfig().to_dict()
    for key in ("features", "decoder_conf", "train_conf"):
        if isinstance(data.get(key), dict):
            data[key] = {**base[key], **data[key]}
        elif key not in data:
            data[key] = base[key]
    try:
        return _build(VocoderConfig, data, "")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_vocoder_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> VocoderConfig:
    """The vocoder's config in ``path`` (None: the defaults), with ``--set`` overrides."""
    return vocoder_config_from_dict(*read_config_data(path, overrides, "vocoder config"))


def save_vocoder_config(path: str | os.PathLike, cfg: VocoderConfig) -> None:
    with atomic_write(path) as fh:
        yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False)
