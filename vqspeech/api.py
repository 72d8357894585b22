"""The toolkit from Python: load a model, then encode, decode and convert audio.

    import vqspeech
    model = vqspeech.load()                          # the shipped model (or a checkpoint path)
    out = model.convert("in.wav", "slt")            # (T,) float32 at model.sample_rate
    codes = model.encode("in.wav")                  # (N,) int64, model.code_rate codes per second
    audio = model.decode(codes, "awb")
    vqspeech.save_audio("out.wav", out, model.sample_rate)

The same library functions as the ``convert-voice``, ``encode`` and ``decode`` commands, so the
same arguments give the same samples (``tests/test_api.py``).  Audio is a path (anything
libsndfile reads, any rate and channel count) or a 1-D float array with its ``sample_rate``
(default the model's).  Every misuse is a :class:`vqspeech.errors.UserError` whose one-line
message names the argument.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .errors import UserError

def load(path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
         vocoder_model: str | os.PathLike | None = None, method: str | None = None) -> "SpeechModel":
    """A VQ-VAE checkpoint (default: the model shipped in the package) ready to use.

    ``device``: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.  ``vocoder_model``: a ``vocoder.pt`` from
    ``vqspeech train-vocoder`` to voice a spectral model instead of Griffin-Lim.  ``method``: the
    WaveNet generation backend (default: the fastest on ``device``, as the CLIs choose).
    """
    from .checkpoint import load_model
    from .devices import resolve_device
    from .generation.registry import choose_method
    from .pretrained import model_path_or_shipped

    device = resolve_device(device, "device")
    path = model_path_or_shipped(path, "path")
    lm = load_model(path, device)
    method = choose_method(method, device, "method")
    vocoder = "griffin-lim"
    if vocoder_model is not None:
        from .vocoders import WaveNetVocoding

        vocoder = WaveNetVocoding.load(vocoder_model, lm, method, device=device, where="vocoder_model")
    return SpeechModel(lm, method, vocoder, Path(path))


class SpeechModel:
    """A loaded VQ-VAE with its speakers, generation backend and vocoder (see :func:`load`)."""

    def __init__(self, lm, method: str, vocoder, path: Path):
        self._lm = lm
        self.method = method
        self.vocoder = vocoder
        self.path = path

    def __repr__(self) -> str:
        return (f"SpeechModel({str(self.path)!r}, {self.model.decoder_kind} decoder, speakers={self.speakers}, "
                f"{self.code_rate:g} codes/s, {self.num_codes} codes)")

    @property
    def model(self) -> torch.nn.Module:
        """The underlying :class:`vqspeech.models.VQVAE` (eval mode)."""
        return self._lm.model

    @property
    def speakers(self) -> list[str]:
        """The training speakers, by the ids ``convert`` and ``decode`` take."""
        return list(self._lm.speakers)

    @property
    def sample_rate(self) -> int:
        return self._lm.sample_rate

    @property
    def hop(self) -> int:
        """Samples per code."""
        return self._lm.hop

    @property
    def code_rate(self) -> float:
        """Codes per second of audio."""
        return self.sample_rate / self.hop

    @property
    def num_codes(self) -> int:
        """Codebook size K: codes are integers in [0, K)."""
        return int(self._lm.config.quantizer_conf.num_codes)

    @property
    def takes_reference_audio(self) -> bool:
        """Whether the model converts to a voice given by recordings (``reference=``)."""
        return bool(getattr(self.model, "reference", False))

    def describe(self) -> dict:
        """What the checkpoint is and holds, as ``vqspeech model-info --json`` prints it (codebook,
        rates, decoder, speakers, parameters, training; :func:`vqspeech.checkpoint_info.describe_checkpoint`)."""
        from .checkpoint_info import describe_checkpoint

        return describe_checkpoint(self.path)

    def waveform(self, audio, sample_rate: int | None = None, name: str = "audio") -> np.ndarray:
        """A path or (T,) array (at ``sample_rate``, default the model's) -> (T',) float32 mono
        waveform at the model's rate."""
        from .audio import load_audio, resample

        if isinstance(audio, (str, os.PathLike)):
            if sample_rate is not None:
                raise UserError("sample_rate: a file carries its own rate; give sample_rate with an array only")
            return load_audio(audio, self.sample_rate)
        wav = _checked_array(audio, name)
        rate = self.sample_rate if sample_rate is None else _checked_rate(sample_rate, "sample_rate")
        return resample(wav, rate, self.sample_rate)

    def encode(self, audio, sample_rate: int | None = None) -> np.ndarray:
        """Audio -> (ceil(T / hop),) int64 codes, as ``vqspeech encode`` writes them."""
        from .conversion import encode_wav, require_one_code

        wav = self.waveform(audio, sample_rate)
        require_one_code(wav, self.hop, self.sample_rate, "audio")
        return encode_wav(self.model, wav, sample_rate=self.sample_rate).cpu().numpy().astype(np.int64)

    def decode(self, codes, speaker: str | None = None, *, reference=None, temperature: float = 1.0,
               seed: int = 0) -> np.ndarray:
        """(N,) codes in a voice -> (N * hop,) float32 waveform at the model's rate.

        The voice is a training ``speaker`` id, or ``reference``: recordings of it (a path, a list
        of paths or of ``(array, sample_rate)`` pairs; reference models only).  ``temperature`` and
        ``seed`` drive a WaveNet's sampling (a spectral model's seed picks Griffin-Lim's phases).
        """
        from .conversion import decode_codes

        codes = np.asarray(codes)
        if codes.ndim != 1 or codes.size == 0 or not np.issubdtype(codes.dtype, np.integer):
            raise UserError(f"codes: expected a non-empty 1-D integer array, got {codes.dtype} {tuple(codes.shape)}")
        if codes.min() < 0 or codes.max() >= self.num_codes:
            raise UserError(f"codes: values must lie in [0, {self.num_codes}), got {codes.min()}..{codes.max()}")
        target = self._target(speaker, reference)
        opts = self._sampling(temperature, seed)
        return decode_codes(self.model, torch.from_numpy(codes.astype(np.int64)), target, opts, self.method,
                            vocoder=self.vocoder)

    def convert(self, audio, speaker: str | None = None, *, reference=None, sample_rate: int | None = None,
                temperature: float = 1.0, seed: int = 0, intonation: float | None = 1.0) -> np.ndarray:
        """Audio said in another voice: (T,) float32 at the model's rate, as long as the input.

        The same samples as ``convert-voice --target-speaker speaker`` (``--target-audio`` for
        ``reference``) with the same ``--seed``, ``--temperature``, ``--method`` and
        ``--intonation`` (a ``source_pitch`` model: the source's contour times ``intonation``,
        None the codes alone).
        """
        from .conversion import convert, require_one_code

        target = self._target(speaker, reference)
        opts = self._sampling(temperature, seed)
        wav = self.waveform(audio, sample_rate)
        require_one_code(wav, self.hop, self.sample_rate, "audio")
        return convert(self.model, wav, target, self.sample_rate, opts, self.method, vocoder=self.vocoder,
                       intonation=intonation).wav

    def _sampling(self, temperature: float, seed: int):
        from .generation import SamplingOptions

        opts = SamplingOptions(temperature=float(temperature), seed=int(seed))
        try:
            opts.check()
        except ValueError as exc:
            raise UserError(f"temperature: {exc}") from None
        return opts

    def _target(self, speaker, reference):
        """A speaker id -> its index; references -> their (256,) embedding."""
        if (speaker is None) == (reference is None):
            raise UserError("give a target speaker or reference audio (one of them)")
        if speaker is not None:
            if speaker not in self._lm.speakers:
                raise UserError(f"speaker: unknown speaker {speaker!r}; valid speakers: {', '.join(self.speakers)}")
            return self._lm.speakers.index(speaker)
        return self.embed_voice(reference)

    def embed_voice(self, reference) -> np.ndarray:
        """Recordings of one voice (a path, a list of paths or of ``(array, sample_rate)`` pairs) ->
        the (256,) unit-norm embedding a reference model is conditioned on (their speech pooled)."""
        if not self.takes_reference_audio:
            raise UserError("reference: this model conditions on a table of training speakers; train one with "
                            "'speaker_conditioning: reference' (or learned) to convert to a voice given by audio")
        from .audio import resample
        from .speaker_reference import EMBED_RATE, MIN_RATE, embed_reference_clips, reference_embedding

        items = [reference] if isinstance(reference, (str, os.PathLike, tuple)) else list(reference)
        if not items:
            raise UserError("reference: no recordings given")
        if all(isinstance(r, (str, os.PathLike)) for r in items):
            return reference_embedding(items, model=self.model)
        clips = []
        for i, item in enumerate(items):
            if not (isinstance(item, tuple) and len(item) == 2):
                raise UserError(f"reference[{i}]: expected a path or an (array, sample_rate) pair")
            wav, rate = _checked_array(item[0], f"reference[{i}]"), _checked_rate(item[1], f"reference[{i}]")
            if rate < MIN_RATE:
                raise UserError(f"reference[{i}]: sample rate {rate} Hz is below the {MIN_RATE} Hz a reference voice needs")
            clips.append((f"reference[{i}]", resample(wav, rate, EMBED_RATE)))
        return embed_reference_clips(clips, model=self.model)


def _checked_array(audio, name: str) -> np.ndarray:
    """A (T,) float array (numpy or torch) -> contiguous float32, or a one-line UserError naming ``name``."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    if not isinstance(audio, np.ndarray):
        raise UserError(f"{name}: expected a file path or a 1-D array, got {type(audio).__name__}")
    if audio.ndim != 1:
        raise UserError(f"{name}: expected a 1-D (mono) waveform, got shape {tuple(audio.shape)}")
    if audio.size == 0:
        raise UserError(f"{name}: the waveform is empty")
    if not np.issubdtype(audio.dtype, np.floating):
        raise UserError(f"{name}: expected float samples in [-1, 1], got {audio.dtype}")
    if not np.isfinite(audio).all():
        raise UserError(f"{name}: the waveform contains NaN or infinite samples")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _checked_rate(rate, name: str) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise UserError(f"{name}: the sample rate must be a positive integer, got {rate!r}")
    return int(rate)
