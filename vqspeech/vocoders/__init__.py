"""Vocoders: spectral frames -> audio. ``VOCODERS`` lists the names ``--vocoder`` accepts.

- ``griffin-lim``: training-free phase reconstruction (:mod:`.griffin_lim`), always available;
- ``wavenet``: a trained WaveNet vocoder (:mod:`vqspeech.wavenet_vocoder`), given as a
  :class:`WaveNetVocoding` (``--vocoder wavenet --vocoder-model exp/vocoder/vocoder.pt``); it
  samples with any generation backend, folded like a WaveNet model's conversion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .griffin_lim import griffin_lim

VOCODERS = ("griffin-lim", "wavenet")


@dataclass
class WaveNetVocoding:
    """A loaded WaveNet vocoder bound to one spectral model: ``rows[i]`` is the vocoder's row for the
    model's speaker ``i`` (None: a speaker the vocoder was not trained on)."""

    vocoder: "object"            # vqspeech.wavenet_vocoder.LoadedVocoder
    rows: list
    method: str = "numba"
    fold: bool = True
    max_batch: int | None = None
    warmup: int | str | None = None  # warm-up per folded segment: samples, "full" or None (conversion.warmup_samples)

    @classmethod
    def bind(cls, vocoder, model_config, model_speakers: list[str], method: str = "numba", fold: bool = True,
             max_batch: int | None = None, warmup: int | str | None = None) -> "WaveNetVocoding":
        vocoder.check_frames_of(model_config)
        rows = []
        for name in model_speakers:
            try:
                rows.append(vocoder.speaker_index(name))
            except ValueError:
                rows.append(None)
        return cls(vocoder, rows, method, fold, max_batch, warmup)

    @classmethod
    def load(cls, path, lm, method: str = "numba", fold: bool = True, max_batch: int | None = None,
             device="cpu", where: str = "--vocoder-model", warmup: int | str | None = None) -> "WaveNetVocoding":
        """The vocoder checkpoint ``path`` bound to the loaded model ``lm`` (a
        :class:`vqspeech.checkpoint.LoadedModel`); every misuse is a one-line UserError."""
        from ..errors import UserError
        from ..wavenet_vocoder import load_vocoder

        if lm.model.decoder_kind != "spectral":
            raise UserError(f"{where}: this is a WaveNet model, which makes its own samples; vocoders serve "
                            f"spectral models")
        try:
            return cls.bind(load_vocoder(path, device), lm.config, lm.speakers, method, fold, max_batch, warmup)
        except ValueError as exc:
            raise UserError(f"{where} {path}: {exc}") from None

    def row(self, speaker) -> int:
        """The vocoder row for a model speaker index (a reference embedding: the shared row, if any)."""
        if not self.vocoder.config.use_speaker:
            return 0
        if not isinstance(speaker, int) or self.rows[speaker] is None:
            raise ValueError(f"the WaveNet vocoder knows speakers {self.vocoder.speakers} only; for other voices "
                             f"train one with use_speaker: false")
        return self.rows[speaker]


@torch.no_grad()
def frames_to_audio(model, log_frames: torch.Tensor, vocoder="griffin-lim", seed: int = 0,
                    iterations: int = 32, speakers: list | None = None) -> torch.Tensor:
    """(B, bins, F') log-magnitude frames of a spectral model -> (B, F' * frame_hop) audio.

    ``vocoder`` is ``"griffin-lim"`` or a :class:`WaveNetVocoding`, which also needs ``speakers``
    (the model's speaker index, or a reference embedding, per row)."""
    if isinstance(vocoder, WaveNetVocoding):
        from ..conversion import decode_many
        from ..generation import SamplingOptions

        if speakers is None or len(speakers) != log_frames.shape[0]:
            raise ValueError("the WaveNet vocoder needs one speaker per utterance")
        voc = vocoder.vocoder.model
        frames = [f.t().to(next(voc.parameters()).device) for f in log_frames.float()]
        outs = decode_many(voc, frames, [vocoder.row(_plain(s)) for s in speakers], SamplingOptions(seed=seed),
                           vocoder.method, vocoder.fold, vocoder.max_batch, warmup=vocoder.warmup)
        return torch.from_numpy(np.stack(outs))
    if vocoder not in VOCODERS:
        raise ValueError(f"unknown vocoder {vocoder!r}; choose from {', '.join(VOCODERS)}")
    if vocoder == "wavenet":
        raise ValueError("--vocoder wavenet needs --vocoder-model (a vocoder.pt from 'vqspeech train-vocoder')")
    d = model.cfg.decoder_conf
    wav = griffin_lim(model.linear_magnitude(log_frames), d.n_fft, d.frame_hop, iterations=iterations, seed=seed)
    return wav.clamp(-1.0, 1.0)


def _plain(speaker):
    """A speaker index as a Python int (tensors and numpy ints included); embeddings unchanged."""
    if isinstance(speaker, torch.Tensor) and speaker.dim() == 0 and not speaker.is_floating_point():
        return int(speaker)
    return int(speaker) if isinstance(speaker, np.integer) else speaker


__all__ = ["VOCODERS", "WaveNetVocoding", "frames_to_audio", "griffin_lim"]
