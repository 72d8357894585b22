"""The assembled VQ-VAE: encoder -> quantizer -> (codes, speaker) -> WaveNet."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import mulaw_encode
from ..config import ExperimentConfig
from .encoder import ConvEncoder
from .quantizer import VectorQuantizer
from .wavenet import WaveNet


class VQVAE(nn.Module):
    """VQ-VAE for speech.

    Args:
        cfg: the experiment config (encoder, quantizer, decoder parts).
        num_speakers: size of the learned speaker table (global conditioning).
    """

    def __init__(self, cfg: ExperimentConfig, num_speakers: int):
        super().__init__()
        self.cfg = cfg
        self.hop = cfg.encoder_conf.hop
        self.num_speakers = num_speakers
        self.encoder = ConvEncoder(cfg.encoder_conf)
        self.quantizer = VectorQuantizer(cfg.encoder_conf.latent_dim, cfg.quantizer_conf)
        d = cfg.decoder_conf
        self.speakers = nn.Embedding(num_speakers, d.speaker_dim)
        # Code features: a small non-causal conv at the frame rate (codes are all known when decoding).
        self.cond_net = nn.Sequential(
            nn.Conv1d(cfg.encoder_conf.latent_dim, d.cond_channels, 3, padding=1), nn.ReLU(),
            nn.Conv1d(d.cond_channels, d.cond_channels, 3, padding=1), nn.ReLU(),
        )
        self.decoder = WaveNet(d)

    # ----------------------------------------------------------------- pieces used by tools
    def encode(self, wav: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, T) waveform -> quantizer outputs (``codes`` (B, F), ``z_q`` (B, D, F), ...) + ``z`` (B, D, F)."""
        # The encoder sees the mu-law companded waveform (same sign, log amplitude): quiet
        # consonants get the same input scale as vowels, which keeps early encoder outputs
        # from collapsing onto the loud frames.
        mu = self.cfg.decoder_conf.quantization_channels - 1
        companded = torch.sign(wav) * torch.log1p(mu * wav.abs().clamp(max=1.0)) / math.log1p(mu)
        z = self.encoder(companded)
        out = self.quantizer(z)
        out["z"] = z
        return out

    def conditioning(self, z_q: torch.Tensor, speaker: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D, F) code vectors, (B,) speaker ids -> (cond features (B, C, F), speaker vectors (B, S))."""
        return self.cond_net(z_q), self.speakers(speaker)

    def codes_to_conditioning(self, codes: torch.Tensor, speaker: torch.Tensor):
        """(B, F) code indices, (B,) speaker ids -> per-layer gate biases at frame rate [(B, 2G, F)]."""
        c, g = self.conditioning(self.quantizer.lookup(codes), speaker)
        return self.decoder.layer_conditioning(c, g)

    # ----------------------------------------------------------------- training
    def forward(self, wav: torch.Tensor, speaker: torch.Tensor) -> dict[str, torch.Tensor]:
        """wav (B, T) in [-1, 1] with T a multiple of the hop, speaker (B,) ->
        dict with ``loss`` (recon + vq), ``recon_loss`` (nats/sample), quantizer stats and ``logits`` (B, Q, T)."""
        enc = self.encode(wav)
        c, g = self.conditioning(enc["z_q"], speaker)
        targets = mulaw_encode(wav, self.cfg.decoder_conf.quantization_channels)
        logits = self.decoder(self.decoder.shift_inputs(targets), c, g, self.hop)
        recon = F.cross_entropy(logits.float(), targets)
        enc.update(logits=logits, targets=targets, recon_loss=recon, vq_loss=enc["loss"], loss=recon + enc["loss"])
        return enc
