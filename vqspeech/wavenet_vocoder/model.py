"""The WaveNet vocoder model: log-mel frames (+ speaker) -> mu-law samples, and its loading."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..audio import mulaw_encode
from ..checkpoint import load_checkpoint
from ..decoder_history import load_measured_history
from ..errors import CheckpointError
from ..models.mel import mel_filterbank
from ..models.spectral import log_mel_frames
from ..models.wavenet import WaveNet
from .config import VocoderConfig, vocoder_config_from_dict

VOCODER_KIND = "wavenet-vocoder"

# Log-mel values run from log(1e-5) = -11.5 (silence) to about 2 (loud vowels); this affine map
# puts them near [-1, 1] for the first convolution.
_LOG_MEL_CENTRE, _LOG_MEL_SCALE = -5.0, 4.0


class WaveNetVocoder(nn.Module):
    """frames (B, F, n_mels) natural-log mel + speaker (B,) ids -> a WaveNet over (B, F * frame_hop) samples.

    To the generation backends it looks like a WaveNet VQ-VAE whose "codes" are frames: it has
    ``decoder`` (the WaveNet), ``hop`` (samples per frame), :meth:`code_conditioning` and
    :meth:`codes_to_conditioning`. With ``use_speaker: false`` every id maps to one shared row.
    """

    decoder_kind = "wavenet"
    reference = False

    def __init__(self, cfg: VocoderConfig, num_speakers: int):
        super().__init__()
        self.cfg = cfg
        f, d = cfg.features, cfg.decoder_conf
        self.hop = f.frame_hop
        self.num_speakers = num_speakers
        layers: list[nn.Module] = []
        channels = f.n_mels
        for _ in range(cfg.cond_layers):
            layers += [nn.Conv1d(channels, d.cond_channels, 3, padding=1), nn.ReLU()]
            channels = d.cond_channels
        self.cond_net = nn.Sequential(*layers)
        self.speakers = nn.Embedding(num_speakers if cfg.use_speaker else 1, d.speaker_dim)
        self.decoder = WaveNet(d)
        self.register_buffer("mel_fbank", mel_filterbank(cfg.sample_rate, f.n_fft, f.n_mels), persistent=False)

    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) waveform -> (B, T // frame_hop, n_mels) log-mel frames, time first (as generation takes them)."""
        f = self.cfg.features
        return log_mel_frames(wav, self.mel_fbank, f.n_fft, f.frame_hop, f.min_magnitude).transpose(1, 2)

    def speaker_vectors(self, speaker: torch.Tensor) -> torch.Tensor:
        """(B,) speaker ids -> (B, speaker_dim)."""
        if speaker.is_floating_point():
            raise ValueError("the WaveNet vocoder takes speaker ids, not reference embeddings (train it with "
                             "use_speaker: false to serve any voice)")
        return self.speakers(speaker if self.cfg.use_speaker else torch.zeros_like(speaker))

    def code_conditioning(self, frames: torch.Tensor, speaker: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, F, n_mels) log-mel frames, (B,) ids -> (frame features (B, C, F), speaker vectors (B, S))."""
        x = (frames.float().transpose(1, 2) - _LOG_MEL_CENTRE) / _LOG_MEL_SCALE
        return self.cond_net(x), self.speaker_vectors(speaker)

    def codes_to_conditioning(self, frames: torch.Tensor, speaker: torch.Tensor) -> list[torch.Tensor]:
        """(B, F, n_mels) frames, (B,) ids -> per-layer gate biases at the frame rate [(B, 2G, F)]."""
        return self.decoder.layer_conditioning(*self.code_conditioning(frames, speaker))

    def forward(self, wav: torch.Tensor, speaker: torch.Tensor) -> dict[str, torch.Tensor]:
        """wav (B, T), T a multiple of frame_hop, speaker (B,) -> ``loss`` = ``recon_loss`` (nats per
        sample of the teacher-forced mu-law cross-entropy) and ``logits`` (B, Q, T)."""
        c, g = self.code_conditioning(self.log_mel(wav), speaker)  # float32 frames under autocast too
        targets = mulaw_encode(wav, self.cfg.decoder_conf.quantization_channels)
        logits = self.decoder(self.decoder.shift_inputs(targets), c, g, self.hop)
        loss = self.decoder.cross_entropy(logits, targets)
        return {"loss": loss, "recon_loss": loss, "logits": logits}


@dataclass
class LoadedVocoder:
    model: WaveNetVocoder
    config: VocoderConfig
    speakers: list[str]
    step: int

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def speaker_index(self, name: str) -> int:
        """The vocoder's row for speaker ``name`` (0 for a vocoder without speakers)."""
        if not self.config.use_speaker:
            return 0
        if name not in self.speakers:
            raise ValueError(f"the WaveNet vocoder was trained on speakers {self.speakers}, not {name!r}; train one "
                             f"on this speaker's audio, or one with use_speaker: false")
        return self.speakers.index(name)

    def check_frames_of(self, model_config, where: str = "--vocoder-model") -> None:
        """One-line error unless a spectral model's frames are what this vocoder reads."""
        check_frames(self.config, model_config, where)


FRAME_SETTINGS = ("sample_rate", "features.n_mels", "features.n_fft", "features.frame_hop")


def check_frames(vocoder_config: VocoderConfig, model_config, where: str = "--vocoder-model") -> None:
    """A ValueError (one line starting with ``where``) unless the vocoder config's frames (sample rate,
    n_mels, n_fft, frame_hop: :data:`FRAME_SETTINGS`) are the ones a spectral model's decoder predicts."""
    d, f = model_config.decoder_conf, vocoder_config.features
    if getattr(d, "features", None) != "mel":
        raise ValueError(f"{where}: the WaveNet vocoder reads mel frames; this model predicts "
                         f"{getattr(d, 'features', 'samples (a WaveNet model needs no vocoder)')}")
    ours = (vocoder_config.sample_rate, f.n_mels, f.n_fft, f.frame_hop)
    theirs = (model_config.sample_rate, d.n_mels, d.n_fft, d.frame_hop)
    if ours != theirs:
        fix = " ".join(f"--set {k}={v}" for k, a, v in zip(FRAME_SETTINGS, ours, theirs) if a != v)
        raise ValueError(f"{where}: vocoder frames (sample rate, n_mels, n_fft, frame_hop) = {ours} differ from "
                         f"the model's {theirs} (train-vocoder {fix} makes a vocoder for it)")


def load_vocoder(path, device="cpu") -> LoadedVocoder:
    """A WaveNet vocoder checkpoint (``exp/<vocoder>/vocoder.pt``), in eval mode; weights_only loading."""
    ckpt = load_checkpoint(path)
    if ckpt.get("kind") != VOCODER_KIND:
        raise CheckpointError(f"{path}: not a WaveNet vocoder checkpoint (train one with 'vqspeech train-vocoder')")
    cfg = vocoder_config_from_dict(ckpt["config"], f"{path} (config)")
    model = WaveNetVocoder(cfg, len(ckpt["speakers"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the config ({str(exc).splitlines()[0][:160]})") from None
    load_measured_history(model.decoder, ckpt, str(path))
    step = int(ckpt.get("train_state", {}).get("step", ckpt.get("step", 0)))
    return LoadedVocoder(model.to(device).eval(), cfg, list(ckpt["speakers"]), step)
