"""The assembled VQ-VAE: encoder -> quantizer -> (codes, speaker) -> decoder.

Two decoders (config key ``decoder``): ``wavenet``, the paper's autoregressive sample-level
WaveNet (:class:`VQVAE`), and ``spectral``, a non-autoregressive network that predicts
log-magnitude STFT frames for a vocoder (:class:`SpectralVQVAE`). :func:`build_model` picks one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import mulaw_compress, mulaw_encode
from ..config import ExperimentConfig
from ..pitch import pitch_features, smoothing_frames, utterance_log_f0_stats
from .encoder import ConvEncoder
from .code_agreement import commitment_to_partner, contrastive_to_partner
from .content_consistency import content_consistency_loss
from .frame_critic import FrameCritic, adversarial_losses
from .quantizer import VectorQuantizer, squared_distances
from .speaker_encoder import EMBEDDING_DIM, SpeakerEncoder
from .mel import mel_filterbank, mel_to_linear
from .spectral import SpectralDecoder, log_magnitude, log_mel_frames
from .wavenet import WaveNet

# The encoder input is mu-law companded with mu = 255 (same sign, log amplitude): quiet
# consonants get the same input scale as vowels, which keeps early encoder outputs from
# collapsing onto the loud frames.
_ENCODER_MU = 255


def time_jitter(x: torch.Tensor, prob: float) -> torch.Tensor:
    """(B, D, F) -> (B, D, F) where each frame is replaced by its left or right neighbour with
    probability ``prob / 2`` each (edges clamp). Uses the global torch RNG (resumable)."""
    if prob <= 0 or x.shape[-1] < 2:
        return x
    B, _, n = x.shape
    u = torch.rand(B, n, device=x.device)
    shift = torch.where(u < prob / 2, -1, torch.where(u < prob, 1, 0))
    idx = (torch.arange(n, device=x.device) + shift).clamp(0, n - 1)
    return torch.gather(x, 2, idx.unsqueeze(1).expand_as(x))


class _GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient is negated and scaled on the way back."""

    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


class SpeakerAdversary(nn.Module):
    """(B, D, F) encoder outputs -> (B, S, F) per-frame speaker logits, behind a gradient reversal."""

    def __init__(self, dim: int, num_speakers: int, scale: float):
        super().__init__()
        self.scale = scale
        self.net = nn.Sequential(nn.Conv1d(dim, 128, 3, padding=1), nn.ReLU(), nn.Conv1d(128, num_speakers, 1))

    def loss(self, z: torch.Tensor, speaker: torch.Tensor, codebook: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy of every frame's speaker guess (``codebook`` unused: the signature every
        adversary shares)."""
        logits = self.net(_GradientReversal.apply(z, self.scale))
        return F.cross_entropy(logits.float(), speaker[:, None].expand(-1, z.shape[-1]))


class CodeHistogramAdversary(nn.Module):
    """(B, D, F) encoder outputs + (K, D) codebook -> (B, S) speaker logits from each crop's soft code
    histogram, behind a gradient reversal: the encoder learns to use the codes alike whoever speaks
    (what the phone report's speaker-from-code-histograms classifier measures), where the frame-level
    :class:`SpeakerAdversary` only hides the speaker from single frames."""

    def __init__(self, num_codes: int, num_speakers: int, scale: float, temperature: float = 1.0,
                 hard: bool = False):
        super().__init__()
        self.scale = scale
        self.temperature = temperature
        self.hard = hard
        self.net = nn.Sequential(nn.Linear(num_codes, 128), nn.ReLU(), nn.Linear(128, num_speakers))

    def histograms(self, z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """(B, D, F), (K, D) -> (B, K) mean over frames of softmax(-squared distance / temperature);
        with ``hard``, the nearest codes' counts / F in the forward pass and the soft histogram's
        gradient in the backward pass (straight-through): with many codes a classifier on soft
        histograms can be fooled while the codes actually picked still tell the voices apart."""
        d = squared_distances(z.transpose(1, 2), codebook)               # (B, F, K)
        soft = torch.softmax(-d / self.temperature, dim=-1)
        if self.hard:
            picked = F.one_hot(d.argmin(-1), d.shape[-1]).to(soft.dtype)
            soft = picked + soft - soft.detach()
        return soft.mean(1)

    def loss(self, z: torch.Tensor, speaker: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        h = self.histograms(_GradientReversal.apply(z, self.scale), codebook.detach())
        return F.cross_entropy(self.net(torch.log(h + 1e-4)), speaker)


REFERENCE_DIM = EMBEDDING_DIM  # resemblyzer d-vectors (vqspeech.speaker_reference) and the learned encoder's


class _EncoderQuantizer(nn.Module):
    """What both decoders share: the waveform encoder, the codebook and the speaker conditioning.

    ``speaker`` arguments are either (B,) int64 ids of training speakers or, for a model with
    ``speaker_conditioning: reference`` or ``learned``, (B, 256) float reference embeddings of any
    voice (resemblyzer d-vectors, or this model's own :class:`SpeakerEncoder`'s);
    :meth:`speaker_vectors` turns either into the decoder's (B, speaker_dim) vectors. In training a
    ``learned`` model's ``reference`` argument is (B, L) audio of other utterances of each speaker,
    which the speaker encoder embeds."""

    decoder_kind = ""
    uses_source_pitch = False   # a spectral decoder with decoder_conf.source_pitch reads the source's pitch
    normalises_pitch_per_utterance = False  # ... and with source_pitch_normalisation: utterance, takes pitch_stats

    def __init__(self, cfg: ExperimentConfig, num_speakers: int, speaker_dim: int):
        super().__init__()
        self.cfg = cfg
        self.hop = cfg.encoder_conf.hop
        self.num_speakers = num_speakers
        self.encoder = ConvEncoder(cfg.encoder_conf, cfg.sample_rate)
        self.quantizer = VectorQuantizer(cfg.encoder_conf.latent_dim, cfg.quantizer_conf)
        self.reference = cfg.speaker_conditioning in ("reference", "learned")
        self.speaker_encoder = SpeakerEncoder(cfg.sample_rate) if cfg.speaker_conditioning == "learned" else None
        if self.reference:
            self.speakers = None
            self.reference_proj = nn.Linear(REFERENCE_DIM, speaker_dim)
            # The training speakers' mean embeddings (set by training, saved with the weights), so a
            # reference model still converts to a training speaker named by id.
            self.register_buffer("speaker_refs", torch.zeros(num_speakers, REFERENCE_DIM))
        else:
            self.speakers = nn.Embedding(num_speakers, speaker_dim)
            self.reference_proj = None
        w = cfg.encoder_conf.speaker_adversary_weight
        self.adversary = None
        if w > 0 and cfg.encoder_conf.speaker_adversary_input in ("code_histogram", "hard_code_histogram"):
            self.adversary = CodeHistogramAdversary(cfg.quantizer_conf.num_codes, num_speakers, w,
                                                    hard=cfg.encoder_conf.speaker_adversary_input == "hard_code_histogram")
        elif w > 0:
            self.adversary = SpeakerAdversary(cfg.encoder_conf.latent_dim, num_speakers, w)

    def speaker_vectors(self, speaker: torch.Tensor) -> torch.Tensor:
        """(B,) speaker ids or (B, 256) reference embeddings -> (B, speaker_dim)."""
        if speaker.is_floating_point():
            if not self.reference:
                raise ValueError("this model conditions on a table of training speakers; reference audio needs a "
                                 "model trained with speaker_conditioning: reference")
            return self.reference_proj(speaker.to(self.reference_proj.weight.dtype))
        if self.reference:
            return self.reference_proj(self.speaker_refs[speaker])
        return self.speakers(speaker)

    def _decoder_speaker(self, speaker: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """forward()'s speaker vectors: from the ids, or from the reference (embeddings; for a
        ``learned`` model, audio that its speaker encoder embeds)."""
        if reference is None:
            return self.speaker_vectors(speaker)
        if self.speaker_encoder is not None:
            reference = self.speaker_encoder(reference)
        return self.speaker_vectors(reference)

    def _adversary_loss(self, enc: dict, speaker: torch.Tensor) -> torch.Tensor:
        """The classifier's cross-entropy (0 when off); its gradient reaches the encoder reversed."""
        if self.adversary is None:
            return enc["loss"].new_zeros(())
        return self.adversary.loss(enc["z"], speaker, self.quantizer.codebook)

    def latents(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) waveform -> (B, D, F) encoder outputs before quantization."""
        return self.encoder(wav if self.encoder.reads_mel else mulaw_compress(wav, _ENCODER_MU))

    def encode(self, wav: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, T) waveform -> quantizer outputs (``codes`` (B, F), ``z_q`` (B, D, F), ...) + ``z`` (B, D, F)."""
        z = self.latents(wav)
        out = self.quantizer(z)
        out["z"] = z
        return out

    def _jittered(self, z_q: torch.Tensor) -> torch.Tensor:
        return time_jitter(z_q, self.cfg.quantizer_conf.jitter) if self.training else z_q


class VQVAE(_EncoderQuantizer):
    """VQ-VAE for speech with the paper's WaveNet decoder.

    Args:
        cfg: the experiment config (encoder, quantizer, decoder parts).
        num_speakers: size of the learned speaker table (global conditioning).
    """

    decoder_kind = "wavenet"

    def __init__(self, cfg: ExperimentConfig, num_speakers: int):
        d = cfg.decoder_conf
        super().__init__(cfg, num_speakers, d.speaker_dim)
        # Code features: a small non-causal conv at the frame rate (codes are all known when decoding).
        self.cond_net = nn.Sequential(
            nn.Conv1d(cfg.encoder_conf.latent_dim, d.cond_channels, 3, padding=1), nn.ReLU(),
            nn.Conv1d(d.cond_channels, d.cond_channels, 3, padding=1), nn.ReLU(),
        )
        self.decoder = WaveNet(d)

    def conditioning(self, z_q: torch.Tensor, speaker: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D, F) code vectors, (B,) speaker ids or (B, 256) references -> (cond features (B, C, F),
        speaker vectors (B, S))."""
        return self.cond_net(z_q), self.speaker_vectors(speaker)

    def code_conditioning(self, codes: torch.Tensor, speaker: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, F) code indices, (B,) speaker ids -> (cond features (B, C, F), speaker vectors (B, S))."""
        return self.conditioning(self.quantizer.lookup(codes), speaker)

    def codes_to_conditioning(self, codes: torch.Tensor, speaker: torch.Tensor):
        """(B, F) code indices, (B,) speaker ids -> per-layer gate biases at frame rate [(B, 2G, F)]."""
        return self.decoder.layer_conditioning(*self.code_conditioning(codes, speaker))

    def forward(self, wav: torch.Tensor, speaker: torch.Tensor, reference: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """wav (B, T) in [-1, 1] with T a multiple of the hop, speaker (B,) ids [, reference (B, 256)
        embeddings, or (B, L) audio for a ``learned`` model, that condition the decoder instead of
        the ids] -> dict with ``loss`` (recon + vq),
        ``recon_loss`` (nats/sample), quantizer stats and ``logits`` (B, Q, T)."""
        enc = self.encode(wav)
        c = self.cond_net(self._jittered(enc["z_q"]))
        g = self._decoder_speaker(speaker, reference)
        targets = mulaw_encode(wav, self.cfg.decoder_conf.quantization_channels)
        logits = self.decoder(self.decoder.shift_inputs(targets), c, g, self.hop)
        recon = self.decoder.cross_entropy(logits, targets)
        adv = self._adversary_loss(enc, speaker)
        enc.update(logits=logits, targets=targets, recon_loss=recon, vq_loss=enc["loss"], adversary_loss=adv,
                   loss=recon + enc["loss"] + adv)
        return enc


class SpectralVQVAE(_EncoderQuantizer):
    """VQ-VAE whose decoder predicts log-magnitude STFT frames (L1 loss), for a vocoder."""

    decoder_kind = "spectral"
    #: the step's decodes of the same codes in other voices (the parallel term's partners, the
    #: critic's conversions, content consistency's) share one batch with the crops' own, and the
    #: critic judges its inputs in two batches (:meth:`_decode_voices`,
    #: :func:`~vqspeech.models.frame_critic.adversarial_losses`); False runs each apart, the form
    #: before, which the benchmark and the tests compare it with
    voices_in_one_batch = True

    def __init__(self, cfg: ExperimentConfig, num_speakers: int):
        d = cfg.decoder_conf
        super().__init__(cfg, num_speakers, d.speaker_dim)
        self.decoder = SpectralDecoder(d, cfg.encoder_conf.latent_dim, self.hop)
        # Derived from the config, so not saved in checkpoints.
        fbank = mel_filterbank(cfg.sample_rate, d.n_fft, d.n_mels) if d.features == "mel" else torch.zeros(0)
        self.register_buffer("mel_fbank", fbank, persistent=False)
        self.critic = FrameCritic(d.gan_critic_channels) if d.gan_weight > 0 else None

    def frames(self, codes: torch.Tensor, speaker: torch.Tensor, pitch: torch.Tensor | None = None) -> torch.Tensor:
        """(B, F) code indices, (B,) speaker ids or (B, 256) references [, (B, 3, F') source pitch from
        :meth:`source_pitch`] -> (B, bins, F' = F * hop // frame_hop) log magnitude."""
        return self.decoder(self.quantizer.lookup(codes), self.speaker_vectors(speaker), pitch)

    @property
    def uses_source_pitch(self) -> bool:
        return self.decoder.pitch_in is not None

    def source_pitch(self, wav: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor | None:
        """(B, T) source waveform [, (B, 2) log-F0 mean and spread to normalise with, from
        :meth:`pitch_stats` of the utterances the rows are cut from] -> (B, 3, T // frame_hop) pitch
        features for :meth:`frames` (:func:`vqspeech.pitch.pitch_features`), or None for a model
        without ``source_pitch``."""
        if not self.uses_source_pitch:
            return None
        dc = self.cfg.decoder_conf
        return pitch_features(wav, self.cfg.sample_rate, dc.frame_hop, voicing=dc.source_pitch_voicing,
                              smoothing=smoothing_frames(dc.source_pitch_smoothing_ms, self.cfg.sample_rate,
                                                         dc.frame_hop), stats=stats)

    @property
    def normalises_pitch_per_utterance(self) -> bool:
        """Whether training crops' contours take their utterance's :meth:`pitch_stats`
        (``decoder_conf.source_pitch_normalisation: utterance``)."""
        return self.uses_source_pitch and self.cfg.decoder_conf.source_pitch_normalisation == "utterance"

    def pitch_stats(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) whole utterances -> (B, 2) their log-F0 mean and spread
        (:func:`vqspeech.pitch.utterance_log_f0_stats`), for :meth:`source_pitch` of crops of them."""
        return utterance_log_f0_stats(wav, self.cfg.sample_rate, self.cfg.decoder_conf.frame_hop)

    def _training_pitch(self, wav: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor | None:
        """The crops' source pitch with ``source_pitch_dropout`` of the rows withheld (all zeros,
        "unknown"), so the decoder also learns to decode codes alone."""
        return self._withheld(self.source_pitch(wav, stats))

    def _withheld(self, pitch: torch.Tensor | None) -> torch.Tensor | None:
        """(B, 3, F) pitch features with each row zeroed ("unknown") with probability
        ``source_pitch_dropout`` in training (global torch RNG, resumable); unchanged otherwise."""
        if pitch is None or not self.training:
            return pitch
        keep = torch.rand(pitch.shape[0], 1, 1, device=pitch.device) >= self.cfg.decoder_conf.source_pitch_dropout
        return pitch * keep

    def target_frames(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) waveform -> (B, bins, T // frame_hop) log magnitude (the regression target)."""
        d = self.cfg.decoder_conf
        if d.features == "linear":
            return log_magnitude(wav, d.n_fft, d.frame_hop, d.min_magnitude)
        return log_mel_frames(wav, self.mel_fbank, d.n_fft, d.frame_hop, d.min_magnitude)

    def linear_magnitude(self, log_frames: torch.Tensor) -> torch.Tensor:
        """(B, bins, F') predicted log frames -> (B, n_fft // 2 + 1, F') linear magnitude for a vocoder."""
        mag = log_frames.float().exp()
        return mag if self.cfg.decoder_conf.features == "linear" else mel_to_linear(mag, self.mel_fbank)

    def forward(self, wav: torch.Tensor, speaker: torch.Tensor, reference: torch.Tensor | None = None,
                parallel: tuple[torch.Tensor, ...] | None = None, pitch_stats: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """wav (B, T), T a multiple of both hops, speaker (B,) ids [, reference (B, 256), or (B, L) audio
        for a ``learned`` model] [, ``parallel``: partner speakers (B,), aligned partner frames (B, bins,
        n) and a (B, n) mask from :class:`vqspeech.parallel_targets.ParallelTargets`, which add
        ``parallel_weight`` x ``parallel_loss``, the masked L1 of the crops decoded with the partner
        speakers; with two more, the partners' crops (B, L) and the aligned partner code index (B, n)
        from :meth:`~vqspeech.parallel_targets.ParallelTargets.draw_partner_crops`, ``parallel_code_weight``
        x ``parallel_code_loss``; last, for a ``source_pitch`` model, the partners' aligned pitch
        (B, 3, n) that those decodes are given (4 or 6 tensors in all)] [, ``pitch_stats`` (B, 2):
        the log-F0 mean and spread of the crops' utterances (:meth:`pitch_stats`), for a model with
        ``source_pitch_normalisation: utterance``; each crop's own by default] -> dict with
        ``loss`` (recon + delta_weight x delta + vq [+ adversary] [+ gan_weight x (gan + 2 x feature
        matching) + critic]), ``recon_loss`` (mean absolute log-magnitude error), ``delta_loss`` (the
        same on frame-to-frame differences), with a critic ``gan_loss``, ``feature_matching_loss``
        and ``critic_loss`` (:mod:`vqspeech.models.frame_critic`; with ``gan_on_conversions`` the
        critic and GAN terms also judge the crops decoded with the batch's speakers rolled by one),
        with ``content_consistency_weight`` a ``content_consistency_loss`` on the crops decoded from
        detached codes with the rolled speakers (:mod:`vqspeech.models.content_consistency`,
        weighted into ``loss``),
        quantizer stats, ``frames`` and ``targets``."""
        enc = self.encode(wav)
        z_q = self._jittered(enc["z_q"])
        g = self._decoder_speaker(speaker, reference)
        pitch = self._training_pitch(wav, pitch_stats)
        partner_pitch = parallel[-1] if parallel is not None and len(parallel) in (4, 6) else None
        d = self.cfg.decoder_conf
        decodes_partners = parallel is not None and d.parallel_weight > 0
        # every decode of this step, in the order they were once made one after the other
        voices = {"own": (z_q, g, lambda: pitch)}
        if d.content_consistency_weight > 0:
            # from detached codes: the term trains the decoder and the speaker vectors only
            voices["consistency"] = (z_q.detach(), g.roll(1, 0), lambda: pitch)
        if decodes_partners:
            voices["partner"] = (z_q, self.speaker_vectors(parallel[0]), lambda: self._withheld(partner_pitch))
        if self.critic is not None and d.gan_on_conversions:
            voices["conversion"] = (z_q, g.roll(1, 0), lambda: pitch)
        decoded = self._decode_voices(voices)
        pred = decoded["own"]
        targets = self.target_frames(wav)
        n = min(pred.shape[-1], targets.shape[-1])
        pred_n, targets_n = pred[..., :n].float(), targets[..., :n]
        recon = F.l1_loss(pred_n, targets_n)
        delta = F.l1_loss(pred_n.diff(dim=-1), targets_n.diff(dim=-1)) if n > 1 else recon.new_zeros(())
        adv = self._adversary_loss(enc, speaker)
        loss = recon + d.delta_weight * delta + enc["loss"] + adv
        if d.content_consistency_weight > 0:
            converted = decoded["consistency"].float()[..., :n]
            book = self.quantizer.codebook if d.content_consistency_target == "codes" else None
            ratio = d.frame_hop // self.cfg.encoder_conf.mel_hop
            consistency = content_consistency_loss(self.encoder, targets_n, converted, ratio, book)
            loss = loss + d.content_consistency_weight * consistency
            enc["content_consistency_loss"] = consistency
        if decodes_partners:
            enc["parallel_loss"] = self._parallel_loss(decoded["partner"].float(), parallel[1], parallel[2], n)
            loss = loss + d.parallel_weight * enc["parallel_loss"]
        if parallel is not None and d.parallel_code_weight > 0:
            enc["parallel_code_loss"] = self._parallel_code_loss(enc["z"], *parallel[3:5])
            loss = loss + d.parallel_code_weight * enc["parallel_code_loss"]
        if self.critic is not None:
            conversions = decoded["conversion"].float() if d.gan_on_conversions else None
            gan = adversarial_losses(self.critic, targets_n, pred_n, conversions, one_batch=self.voices_in_one_batch)
            loss = loss + d.gan_weight * (gan["gan_loss"] + 2 * gan["feature_matching_loss"]) + gan["critic_loss"]
            enc.update(gan)
        enc.update(frames=pred, targets=targets, recon_loss=recon, delta_loss=delta, vq_loss=enc["loss"],
                   adversary_loss=adv, loss=loss)
        return enc

    def _decode_voices(self, voices: dict[str, tuple[torch.Tensor, torch.Tensor, Callable[[], torch.Tensor | None]]]
                       ) -> dict[str, torch.Tensor]:
        """{name: (codes (B, D, F), speaker vectors (B, speaker_dim), a function giving the source
        pitch (B, 3, F') or None)} -> {name: (B, bins, F') decoded frames}.

        The step decodes the crops' codes in their own voices and, for its other terms, in other
        voices (partners, rolled speakers). All are decoded as one batch of len(voices) x B: the
        same numbers to float rounding as one call each, in fewer, larger convolutions, which use
        a second CPU thread far better than batches of B. The pitch functions are called in the
        dict's order before decoding: the partners' pitch is withheld for ``source_pitch_dropout``
        of them by a draw that comes where it did when each voice was decoded apart, since
        decoding draws nothing. With decoder dropout, which draws while decoding, each voice is
        decoded apart, its pitch drawn just before; so is every voice when some pitch is missing
        or of another shape."""
        if not self.voices_in_one_batch or self.cfg.decoder_conf.dropout > 0 or len(voices) == 1:
            return {name: self.decoder(z, g, pitch()) for name, (z, g, pitch) in voices.items()}
        pitches = [pitch() for _, _, pitch in voices.values()]
        given = [p is not None for p in pitches]
        if (any(given) and not all(given)) or (all(given) and len({p.shape for p in pitches}) > 1):
            return {name: self.decoder(z, g, p) for (name, (z, g, _)), p in zip(voices.items(), pitches)}
        zs, gs = zip(*[(z, g) for z, g, _ in voices.values()])
        stacked_pitch = None if pitches[0] is None else torch.cat([p.to(pitches[0].dtype) for p in pitches])
        out = self.decoder(torch.cat(zs), torch.cat([g.to(gs[0].dtype) for g in gs]), stacked_pitch)
        return dict(zip(voices, out.split(zs[0].shape[0])))

    @staticmethod
    def _parallel_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, n: int) -> torch.Tensor:
        """Masked mean absolute error of the crops' codes decoded with the partner speakers,
        pred (B, bins, F'), against the partners' aligned frames target (B, bins, n') where mask
        (B, n') is 1; every parameter on the path (encoder included) learns from it."""
        m = min(n, pred.shape[-1], target.shape[-1])
        err = (pred[..., :m] - target[..., :m]).abs().mean(dim=1)  # (B, m)
        w = mask[:, :m]
        return (err * w).sum() / w.sum().clamp(min=1.0)

    def _parallel_code_loss(self, z: torch.Tensor, partner_wav: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """z (B, D, n) the crops' encoder outputs, partner_wav (B, L) the partners' crops and index
        (B, n) the partner-crop code aligned with each crop code (-1: none) -> the
        ``parallel_code_loss`` form of :mod:`vqspeech.models.code_agreement` (the partner crops are
        encoded without gradient: a constant target)."""
        d = self.cfg.decoder_conf
        with torch.no_grad():
            zp = self.latents(partner_wav)
        if d.parallel_code_loss == "contrastive":
            return contrastive_to_partner(z, zp, index, d.parallel_code_temperature)
        B, D, m = zp.shape
        codes = self.quantizer.nearest(zp.transpose(1, 2).reshape(-1, D).float()).view(B, m)
        return commitment_to_partner(z, codes, self.quantizer.codebook, index)


MODELS = {"wavenet": VQVAE, "spectral": SpectralVQVAE}


def build_model(cfg: ExperimentConfig, num_speakers: int) -> VQVAE | SpectralVQVAE:
    """The model class the config's ``decoder`` names."""
    return MODELS[cfg.decoder](cfg, num_speakers)
