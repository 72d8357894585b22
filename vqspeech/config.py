"""Typed experiment configuration: dataclasses, YAML in and out, strict checking.

One YAML per experiment (``conf/<name>.yaml``)::

    sample_rate: 16000
    encoder_conf: {channels: 128, kernel_sizes: [4, 4, 4, 4, 4, 4], strides: [2, 2, 2, 2, 2, 2], latent_dim: 64}
    quantizer: ema              # a name from QUANTIZERS ...
    quantizer_conf: {num_codes: 512, beta: 0.25, decay: 0.99}   # ... and its options
    decoder_conf: {layers: 20, dilation_cycle: 10, residual_channels: 64, skip_channels: 128}
    train_conf: {batch_size: 8, segment_samples: 8192, max_steps: 2000, lr: 4.0e-4}

Unknown keys and values of the wrong type are errors naming the key; the resolved config
(every default filled in) is written to ``exp/<tag>/config.yaml``.  The training commands take
``--set section.key=value`` overrides on top of the file (:func:`apply_overrides`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import ConfigError
from .fileio import atomic_write

# The WaveNet decoder's channels-last gates (``train_conf.gate_kernel``, ``WaveNet.gate_kernel``)
GATE_KERNELS = ("torch", "triton", "triton-linear")
VOICING_KINDS = ("periodicity", "binary", "none")  # decoder_conf.source_pitch_voicing (vqspeech.pitch)
PITCH_NORMALISATIONS = ("crop", "utterance")  # decoder_conf.source_pitch_normalisation


def require_at_least(obj, section: str, minimum: float, *names: str) -> None:
    """Raise a ConfigError naming ``section.name`` (``name`` at the top level, section "") unless every
    named field of ``obj`` is >= minimum."""
    for name in names:
        value = getattr(obj, name)
        if not value >= minimum:  # also refuses NaN
            raise ConfigError(f"{_field(section, name)}: must be >= {minimum}, got {value}")


def require_positive(obj, section: str, *names: str) -> None:
    """Raise a ConfigError naming ``section.name`` unless every named field of ``obj`` is > 0."""
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise ConfigError(f"{_field(section, name)}: must be > 0, got {value}")


def _field(section: str, name: str) -> str:
    return f"{section}.{name}" if section else name


@dataclass
class EncoderConfig:
    """Strided 1-D convolutions on the raw waveform; hop = product of strides."""

    channels: int = 256
    kernel_sizes: list[int] = field(default_factory=lambda: [4] * 6)
    strides: list[int] = field(default_factory=lambda: [2] * 6)
    latent_dim: int = 64
    # Non-strided residual convolutions after the strided stack: they widen the receptive
    # field per code (dilations 1, 2, 4, ... cycling every 4 layers) without changing the hop.
    residual_layers: int = 0
    residual_kernel: int = 3
    # Speaker-adversarial training: a frame-level speaker classifier on the encoder outputs,
    # trained through a gradient-reversal layer, so the encoder learns to hide the speaker.
    # 0 turns it off (the paper's setting).
    speaker_adversary_weight: float = 0.0
    # What the adversary reads: "frames" (each encoder output frame) or "code_histogram" (each
    # crop's soft histogram over the codebook, what reveals the speaker in the phone report) or
    # "hard_code_histogram" (the counts of the codes the quantizer picks, with the soft histogram's
    # gradient: straight-through, so the classifier sees what the phone report's classifier sees).
    speaker_adversary_input: str = "frames"
    # Instance normalisation of the latents before quantization: each latent channel is set to
    # zero mean and unit variance over the time of one utterance (one crop in training), which
    # removes whatever is constant over the utterance, the voice's average above all, from what
    # the codebook sees (the content encoders of AdaIN-VC and VQVC+).
    instance_norm: bool = False
    # What the first convolution reads: "waveform" (the paper's: mu-law companded samples) or
    # "mel" (natural-log mel frames, ``mel_bins`` bands of a ``mel_n_fft``-point STFT every
    # ``mel_hop`` samples); then hop = mel_hop x product of strides.
    input: str = "waveform"
    mel_bins: int = 80
    mel_n_fft: int = 512
    mel_hop: int = 64
    # Information perturbation (``input: mel`` only; training only, see models/perturb.py): each
    # crop the encoder reads has its frequency axis scaled by a random factor in
    # [1 / (1 + input_warp), 1 + input_warp] and a smooth random equaliser of standard deviation
    # ``input_tilt`` (natural-log units) added to its log-mel frames, while the decoder reconstructs
    # the untouched frames: the codes gain nothing from carrying formant scale or spectral slope.
    input_warp: float = 0.0
    input_tilt: float = 0.0

    def check(self) -> None:
        require_at_least(self, "encoder_conf", 1, "channels", "latent_dim")
        if self.input not in ("waveform", "mel"):
            raise ConfigError(f"encoder_conf.input: must be waveform or mel, got {self.input!r}")
        if self.input == "mel":
            if self.mel_n_fft < 16 or self.mel_n_fft & (self.mel_n_fft - 1):
                raise ConfigError(f"encoder_conf.mel_n_fft: must be a power of two >= 16, got {self.mel_n_fft}")
            if not 1 <= self.mel_bins <= self.mel_n_fft // 2 + 1 or not 1 <= self.mel_hop <= self.mel_n_fft:
                raise ConfigError("encoder_conf: mel_bins must be in [1, mel_n_fft / 2 + 1] and mel_hop in "
                                  "[1, mel_n_fft]")
        require_at_least(self, "encoder_conf", 0, "speaker_adversary_weight")
        if self.speaker_adversary_input not in ("frames", "code_histogram", "hard_code_histogram"):
            raise ConfigError(f"encoder_conf.speaker_adversary_input: must be frames, code_histogram or "
                              f"hard_code_histogram, got "
                              f"{self.speaker_adversary_input!r}")
        if not 0.0 <= self.input_warp < 1.0 or self.input_tilt < 0:
            raise ConfigError(f"encoder_conf: input_warp must be in [0, 1) and input_tilt >= 0, got "
                              f"{self.input_warp}, {self.input_tilt}")
        if (self.input_warp or self.input_tilt) and self.input != "mel":
            raise ConfigError("encoder_conf: input_warp and input_tilt perturb log-mel frames; they need input: mel")
        if self.residual_layers < 0 or self.residual_kernel < 1 or self.residual_kernel % 2 == 0:
            raise ConfigError("encoder_conf: residual_layers must be >= 0 and residual_kernel odd and >= 1")
        if len(self.kernel_sizes) != len(self.strides) or not self.strides:
            raise ConfigError("encoder_conf: kernel_sizes and strides must be non-empty lists of equal length")
        for k, s in zip(self.kernel_sizes, self.strides):
            if k < s or s < 1:
                raise ConfigError(f"encoder_conf: each kernel size must be >= its stride >= 1 (got {k}, {s})")

    @property
    def hop(self) -> int:
        return math.prod(self.strides) * (self.mel_hop if self.input == "mel" else 1)


@dataclass
class QuantizerConfig:
    """Vector quantizer options (shared by the ``vq`` and ``ema`` variants)."""

    num_codes: int = 512
    beta: float = 0.25                 # commitment weight
    kmeans_init: bool = True           # initialise the codebook by k-means on the first batches' outputs
    kmeans_init_batches: int = 4
    kmeans_iters: int = 20
    dead_code_restart: bool = True     # re-seed unused codes from recent encoder outputs
    restart_every: int = 100           # steps between restarts
    dead_code_threshold: float = 1.0   # a code used fewer times than this since the last restart is dead
    buffer_size: int = 4096            # recent encoder outputs kept for restarts and k-means
    # Time-jitter (Chorowski et al. 2019): in training, each quantized frame is replaced by a
    # neighbour's with this probability (half left, half right), so no code can encode
    # information that only its exact position carries.
    jitter: float = 0.0

    def check(self) -> None:
        require_at_least(self, "quantizer_conf", 1, "num_codes", "kmeans_init_batches", "kmeans_iters",
                         "restart_every", "buffer_size")
        require_at_least(self, "quantizer_conf", 0, "beta", "dead_code_threshold")
        if not 0.0 <= self.jitter < 1.0:
            raise ConfigError(f"quantizer_conf.jitter: must be in [0, 1), got {self.jitter}")


@dataclass
class EMAQuantizerConfig(QuantizerConfig):
    decay: float = 0.99
    epsilon: float = 1e-5              # Laplace smoothing of the cluster sizes

    def check(self) -> None:
        super().check()
        if not 0.0 <= self.decay < 1.0:
            raise ConfigError(f"quantizer_conf.decay: must be in [0, 1), got {self.decay}")
        require_positive(self, "quantizer_conf", "epsilon")


QUANTIZERS: dict[str, type[QuantizerConfig]] = {"vq": QuantizerConfig, "ema": EMAQuantizerConfig}


@dataclass
class DecoderConfig:
    """WaveNet decoder; dilations 1, 2, ..., 2**(dilation_cycle-1) repeated to ``layers``."""

    layers: int = 20
    dilation_cycle: int = 10
    residual_channels: int = 64
    gate_channels: int = 128
    skip_channels: int = 128
    speaker_dim: int = 64              # learned speaker embedding (global conditioning)
    cond_channels: int = 128           # code features before upsampling (local conditioning)
    quantization_channels: int = 256   # mu-law classes

    def check(self) -> None:
        require_at_least(self, "decoder_conf", 1, "layers", "dilation_cycle", "residual_channels",
                         "gate_channels", "skip_channels", "speaker_dim", "cond_channels")
        require_at_least(self, "decoder_conf", 2, "quantization_channels")

    @property
    def dilations(self) -> list[int]:
        return [2 ** (i % self.dilation_cycle) for i in range(self.layers)]

    @property
    def receptive_field(self) -> int:
        return sum(self.dilations) + 1


@dataclass
class SpectralDecoderConfig:
    """Non-autoregressive decoder: codes + speaker -> log-magnitude frames (B, bins, F'), where
    bins is ``n_mels`` (``features: mel``) or ``n_fft / 2 + 1`` (``features: linear``).

    The frame hop must be a multiple or a divisor of the code hop. See the README's decoder
    study for why mel is the default.
    """

    features: str = "mel"              # mel | linear
    n_mels: int = 80
    n_fft: int = 1024
    frame_hop: int = 256
    channels: int = 256
    layers: int = 8                    # residual conv blocks at the frame rate
    kernel_size: int = 5
    speaker_dim: int = 64              # learned speaker embedding (FiLM on every block)
    min_magnitude: float = 1.0e-5      # floor before the log (about -100 dB)
    dropout: float = 0.0               # on each block's hidden features, training only
    # Weight of an L1 loss on the frame-to-frame differences (deltas) of the log frames, beside the
    # L1 on the frames: it penalises transitions smoothed over in time, not only wrong levels.
    delta_weight: float = 0.0
    # Weight of an adversarial loss on the frames (a convolutional critic trained beside the
    # decoder, vqspeech.models.frame_critic): gan_weight x (least-squares GAN loss + 2 x feature
    # matching). 0 = off (no critic is built).
    gan_weight: float = 0.0
    gan_critic_channels: int = 32
    # With the critic: also decode each crop's codes with another crop's speaker (the batch's
    # speakers rolled by one) and give those conversions, which have no target frames, the GAN
    # loss too, so the decoder learns to make real-looking frames from mismatched codes and
    # voice, the case voice conversion is.
    gan_on_conversions: bool = False
    # Weight of the content-consistency loss (vqspeech.models.content_consistency): each crop's codes
    # are also decoded with another crop's speaker, and the log-mel encoder (frozen for this term)
    # must read those converted frames as it reads the crop's true frames. Needs encoder_conf.input:
    # mel, mel features with n_mels = encoder_conf.mel_bins and frame_hop a multiple of its mel_hop.
    # 0 = off.
    content_consistency_weight: float = 0.0
    # What the two readings must agree on: "latents" (mean squared difference) or "codes" (the
    # conversion's reading must pick the true reading's code; cross-entropy over the codebook).
    content_consistency_target: str = "latents"
    # Weight of parallel supervision (vqspeech.parallel_targets): each crop's codes are also decoded
    # with the speaker of another training utterance of the same transcript, against that
    # utterance's frames aligned by DTW (L1, masked).  Needs transcripts in the training data
    # directory's text file and sentences read by several voices.  0 = off.
    parallel_weight: float = 0.0
    # Weight of parallel code agreement (the same partners): each crop code's encoder output is
    # pulled, like the commitment loss, to the code the encoder picks for the DTW-aligned moment of
    # the partner's reading, so that one sentence read by two voices gets the same codes (mean
    # squared distance; the partner crop is encoded without gradient).  0 = off.
    parallel_code_weight: float = 0.0
    # Its form (vqspeech.models.code_agreement): "commitment" (the distance above) or "contrastive"
    # (InfoNCE: pick the aligned partner moment among the partner crop's, cosine / temperature).
    parallel_code_loss: str = "commitment"
    parallel_code_temperature: float = 0.1
    # Who a crop's partners are: "transcript" (other voices' readings of the same text, aligned by
    # DTW) or "origin" (the utterance's voice-shifted copies, `vqspeech shift-voices`' utt2origin:
    # the same words at the same times, aligned frame for frame; no transcripts needed).
    parallel_partners: str = "transcript"
    # Condition the decoder on the source's pitch (vqspeech.pitch): per frame, the log-F0 contour with
    # its mean and spread over the utterance (a crop in training) taken out, the periodicity and a
    # "known" flag. Conversion then keeps the source's intonation in the target's register.
    # Decoding codes alone (decode, sample) gives "unknown" pitch, which training teaches with
    # source_pitch_dropout: the share of crops whose pitch is withheld (the parallel term decodes with
    # its partners' own aligned pitch, withheld for the same share).
    source_pitch: bool = False
    source_pitch_dropout: float = 0.2
    # What the second pitch channel says of voicing: "periodicity" (YIN's, graded, 0-1; its level is
    # partly the voice's own), "binary" (1 where the F0 track is voiced) or "none" (always 0: the
    # contour alone, 0 where unvoiced).
    source_pitch_voicing: str = "periodicity"
    # The contour averaged over this many milliseconds of voiced frames (0: as tracked): intonation
    # moves over syllables, while the frame-to-frame wobble is partly the source voice's own.
    source_pitch_smoothing_ms: float = 0.0
    # What a training crop's contour is taken relative to: "crop" (the crop's own log-F0 mean and
    # spread, about a second) or "utterance" (those of the whole utterance it is cut from, the row
    # that conversion and the parallel term's partners are normalised over). Conversion is the same
    # either way.
    source_pitch_normalisation: str = "crop"

    def check(self) -> None:
        if self.features not in ("mel", "linear"):
            raise ConfigError(f"decoder_conf.features: must be mel or linear, got {self.features!r}")
        if self.features == "mel" and not 1 <= self.n_mels <= self.n_fft // 2 + 1:
            raise ConfigError(f"decoder_conf.n_mels: must be in [1, n_fft / 2 + 1], got {self.n_mels}")
        if self.n_fft < 16 or self.n_fft & (self.n_fft - 1):
            raise ConfigError(f"decoder_conf.n_fft: must be a power of two >= 16, got {self.n_fft}")
        if not 1 <= self.frame_hop <= self.n_fft:
            raise ConfigError(f"decoder_conf.frame_hop: must be in [1, n_fft], got {self.frame_hop}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(f"decoder_conf.kernel_size: must be odd, got {self.kernel_size}")
        require_at_least(self, "decoder_conf", 0, "delta_weight", "parallel_weight", "parallel_code_weight",
                         "content_consistency_weight")
        if not 0 <= self.source_pitch_dropout <= 1:
            raise ConfigError(f"decoder_conf.source_pitch_dropout: must be in [0, 1], got {self.source_pitch_dropout}")
        if self.source_pitch_voicing not in VOICING_KINDS:
            raise ConfigError(f"decoder_conf.source_pitch_voicing: must be one of {', '.join(VOICING_KINDS)}, got "
                              f"{self.source_pitch_voicing!r}")
        require_at_least(self, "decoder_conf", 0, "source_pitch_smoothing_ms")
        if self.source_pitch_normalisation not in PITCH_NORMALISATIONS:
            raise ConfigError(f"decoder_conf.source_pitch_normalisation: must be one of "
                              f"{', '.join(PITCH_NORMALISATIONS)}, got {self.source_pitch_normalisation!r}")
        if self.gan_on_conversions and self.gan_weight <= 0:
            raise ConfigError("decoder_conf.gan_on_conversions: needs gan_weight > 0 (the critic judges them)")
        if self.content_consistency_target not in ("latents", "codes"):
            raise ConfigError(f"decoder_conf.content_consistency_target: must be latents or codes, got "
                              f"{self.content_consistency_target!r}")
        if self.parallel_code_loss not in ("commitment", "contrastive"):
            raise ConfigError(f"decoder_conf.parallel_code_loss: must be commitment or contrastive, got "
                              f"{self.parallel_code_loss!r}")
        require_positive(self, "decoder_conf", "parallel_code_temperature")
        if self.parallel_partners not in ("transcript", "origin"):
            raise ConfigError(f"decoder_conf.parallel_partners: must be transcript or origin, got "
                              f"{self.parallel_partners!r}")
        if self.gan_weight < 0 or self.gan_critic_channels < 1:
            raise ConfigError(f"decoder_conf: gan_weight must be >= 0 and gan_critic_channels >= 1, got "
                              f"{self.gan_weight} and {self.gan_critic_channels}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"decoder_conf.dropout: must be in [0, 1), got {self.dropout}")
        if self.layers < 0 or self.channels < 1 or self.speaker_dim < 1:
            raise ConfigError("decoder_conf: layers >= 0, channels >= 1 and speaker_dim >= 1 required")
        require_positive(self, "decoder_conf", "min_magnitude")


DECODERS: dict[str, type] = {"wavenet": DecoderConfig, "spectral": SpectralDecoderConfig}


@dataclass
class TrainConfig:
    batch_size: int = 8                # per process
    segment_samples: int = 8192        # random crop length, rounded down to a multiple of the hop
    max_steps: int = 2000
    lr: float = 4e-4
    lr_schedule: str = "cosine"        # none | cosine | step
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    seed: int = 1234
    log_every: int = 20
    val_every: int = 200
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    val_batches: int = 4
    num_workers: int = 0
    preload: bool = True               # keep the corpus in memory (int16); false: read per crop
    amp: str = "none"                  # none | bf16 | fp16 autocast on CUDA; bf16 also on a CPU with native bf16
    compile: bool = False              # torch.compile the WaveNet decoder (CUDA only; pays off on GPUs)
    # CUDA only: the WaveNet layers' gate, torch | triton (the Triton gate pair) | triton-linear (the
    # convolution's product and the gate in one Triton kernel; 0.58x the saved activations); the
    # Triton ones need triton (pip install 'vqspeech[gpu]') and are not yet timed on a GPU (README)
    gate_kernel: str = "torch"
    # CUDA only, the step's other candidates (benchmarks/training.py times each; README, "On one GPU"):
    cudnn_benchmark: bool = False      # cuDNN times its algorithms for the encoder's convolutions
    compile_encoder: bool = False      # torch.compile the encoder on its own (its pads and ReLUs fused)
    compile_loss: bool = False         # the WaveNet's cross-entropy compiled on its own
    amp_residual_stream: bool = False  # the WaveNet's residual stream in amp's dtype, not float32 (needs amp)
    # A VQ-VAE checkpoint whose weights start a training at step 0 (fine-tuning; vqspeech.warm_start):
    # speakers matched by name, the optimizer and schedule fresh. "" = from scratch.
    init_from: str = ""
    audio_samples: int = 2             # generated clips written to tensorboard at validation
    audio_sample_seconds: float = 0.5

    def check(self) -> None:
        if self.lr_schedule not in ("none", "cosine", "step"):
            raise ConfigError(f"train_conf.lr_schedule: must be none, cosine or step, got {self.lr_schedule!r}")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ConfigError(f"train_conf.amp: must be none, bf16 or fp16, got {self.amp!r}")
        if self.amp_residual_stream and self.amp == "none":
            raise ConfigError("train_conf.amp_residual_stream: needs amp bf16 or fp16 (the stream takes amp's dtype)")
        if self.gate_kernel not in GATE_KERNELS:
            raise ConfigError(f"train_conf.gate_kernel: must be {', '.join(GATE_KERNELS[:-1])} or "
                              f"{GATE_KERNELS[-1]}, got {self.gate_kernel!r}")
        require_at_least(self, "train_conf", 1, "batch_size", "segment_samples", "max_steps", "log_every",
                         "val_every", "checkpoint_every", "keep_checkpoints", "val_batches")
        require_at_least(self, "train_conf", 0, "warmup_steps", "grad_clip", "num_workers", "audio_samples")
        require_positive(self, "train_conf", "lr", "audio_sample_seconds")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"train_conf.min_lr_ratio: must be in [0, 1], got {self.min_lr_ratio}")


@dataclass
class ExperimentConfig:
    sample_rate: int = 16000
    encoder_conf: EncoderConfig = field(default_factory=EncoderConfig)
    quantizer: str = "ema"
    quantizer_conf: QuantizerConfig = field(default_factory=EMAQuantizerConfig)
    decoder: str = "wavenet"           # a name from DECODERS ...
    decoder_conf: DecoderConfig | SpectralDecoderConfig = field(default_factory=DecoderConfig)  # ... its options
    train_conf: TrainConfig = field(default_factory=TrainConfig)
    # Where the decoder's speaker vector comes from: "table" (a learned row per training speaker,
    # the paper's setting), "reference" (a resemblyzer d-vector of reference audio, projected by
    # a learned layer: converts to voices the model never heard; see vqspeech/speaker_reference.py)
    # or "learned" (the same from a speaker encoder trained jointly on other utterances of each
    # training speaker, vqspeech/models/speaker_encoder.py: the comparison row).
    speaker_conditioning: str = "table"

    def check(self) -> None:
        require_at_least(self, "", 1, "sample_rate")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def sample_multiple(self) -> int:
        """Training crops are a multiple of this many samples (the code hop, and the frame hop of a
        spectral decoder), so codes and target frames tile them exactly."""
        hop = self.encoder_conf.hop
        return math.lcm(hop, self.decoder_conf.frame_hop) if self.decoder == "spectral" else hop


# A number in exponent form without a decimal point (2e-3, 1E+5): PyYAML follows YAML 1.1, whose
# float pattern needs the point, and reads these as strings; everyone writes learning rates so.
_EXPONENT_WITHOUT_POINT = re.compile(r"[-+]?\d+[eE][-+]?\d+")


def _coerce(value, typ, where: str):
    origin = typing.get_origin(typ)
    if origin is list:
        (item,) = typing.get_args(typ)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, str) and _EXPONENT_WITHOUT_POINT.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 2e-3 (no decimal point) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(typ):
        return _build(typ, value, where)
    raise ConfigError(f"{where}: unsupported type {typ}")  # pragma: no cover


def _build(cls, data, where: str):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'top level'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where + ': ' if where else ''}unknown key{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(unknown)} "
                          f"(valid: {', '.join(sorted(names))})")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    obj = cls(**kwargs)
    if hasattr(obj, "check"):
        obj.check()
    return obj


def config_from_dict(data: dict, source: str = "config") -> ExperimentConfig:
    """Build and check an ExperimentConfig; errors name ``source`` and the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    data = dict(data)
    qname = data.get("quantizer", "ema")
    if qname not in QUANTIZERS:
        raise ConfigError(f"{source}: quantizer: unknown {qname!r}; choose from {', '.join(QUANTIZERS)}")
    dname = data.get("decoder", "wavenet")
    if dname not in DECODERS:
        raise ConfigError(f"{source}: decoder: unknown {dname!r}; choose from {', '.join(DECODERS)}")
    if data.get("speaker_conditioning", "table") not in ("table", "reference", "learned"):
        raise ConfigError(f"{source}: speaker_conditioning: must be table, reference or learned, "
                          f"got {data['speaker_conditioning']!r}")
    qconf = data.pop("quantizer_conf", None)
    dconf = data.pop("decoder_conf", None)
    try:
        cfg = _build(ExperimentConfig, data, "")
        cfg.quantizer_conf = _build(QUANTIZERS[qname], qconf, "quantizer_conf")
        cfg.decoder_conf = _build(DECODERS[dname], dconf, "decoder_conf")
        if cfg.speaker_conditioning == "learned" and cfg.train_conf.batch_size < 2:
            raise ConfigError("train_conf.batch_size: speaker_conditioning: learned needs at least 2 crops per "
                              "batch (its speaker encoder normalises over the batch)")
        if dname == "spectral":
            fh, ch = cfg.decoder_conf.frame_hop, cfg.encoder_conf.hop
            if fh % ch and ch % fh:
                raise ConfigError(f"decoder_conf.frame_hop ({fh}) must be a multiple or a divisor of the "
                                  f"encoder's hop ({ch})")
            _check_content_consistency(cfg)
            if cfg.decoder_conf.parallel_weight > 0 and cfg.speaker_conditioning == "learned":
                raise ConfigError("decoder_conf.parallel_weight: needs speaker_conditioning table or reference "
                                  "(the partner's voice is looked up by speaker id)")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def _check_content_consistency(cfg: ExperimentConfig) -> None:
    """The content-consistency loss feeds the decoder's log-mel frames to the encoder."""
    d, e = cfg.decoder_conf, cfg.encoder_conf
    if d.content_consistency_weight <= 0:
        return
    if e.input != "mel" or d.features != "mel":
        raise ConfigError("decoder_conf.content_consistency_weight: needs encoder_conf.input: mel and "
                          "decoder_conf.features: mel (the encoder reads the decoded frames)")
    if d.n_mels != e.mel_bins or d.frame_hop % e.mel_hop:
        raise ConfigError(f"decoder_conf.content_consistency_weight: needs decoder_conf.n_mels ({d.n_mels}) = "
                          f"encoder_conf.mel_bins ({e.mel_bins}) and decoder_conf.frame_hop ({d.frame_hop}) a "
                          f"multiple of encoder_conf.mel_hop ({e.mel_hop})")


def read_yaml_mapping(path: str | os.PathLike):
    """A YAML file's contents, with one-line ConfigErrors naming the file (and line)."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: invalid YAML ({getattr(exc, 'problem', exc)})") from None


def apply_overrides(data: dict | None, overrides: Sequence[str]) -> dict:
    """A copy of ``data`` (a config file's mapping; None: an empty one) with each override
    ``section.key=value`` applied, the value read as YAML (``true``, ``32``, ``4.0e-4``,
    ``[4, 4]``, ``bf16``).  Sections missing from ``data`` are created; unknown keys are left for
    the dataclasses' check, which names them and the valid ones."""
    data = copy.deepcopy(data) if data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping")
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"--set {item}: expected section.key=value, e.g. train_conf.batch_size=32")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item}: the value is not YAML ({getattr(exc, 'problem', exc)})") from None
        node = data
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: {'.'.join(parts[:depth + 1])} is a value, not a section")
        node[parts[-1]] = value
    return data


def read_config_data(path: str | os.PathLike | None, overrides: Sequence[str], default_source: str) -> tuple[dict, str]:
    """A config file's mapping (``path`` None: an empty one, the defaults) with the ``--set``
    overrides applied, and the source its errors name: the file (or ``default_source``) and
    the overrides when there are any."""
    data = read_yaml_mapping(path) if path is not None else None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    source = str(path) if path is not None else default_source
    return apply_overrides(data, overrides), f"{source} with --set {' '.join(overrides)}" if overrides else source


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The experiment config in ``path``, with ``--set`` overrides (:func:`apply_overrides`)."""
    return config_from_dict(*read_config_data(path, overrides, ""))


def save_config(path: str | os.PathLike, cfg: ExperimentConfig) -> None:
    with atomic_write(path) as fh:
        yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False)
