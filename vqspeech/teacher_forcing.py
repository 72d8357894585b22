"""Real utterances under teacher forcing: the decoder's predictions of true samples.

Shared by ``vqspeech measure-history`` (:mod:`vqspeech.decoder_history`) and the study
``benchmarks/generation_precision.py``.  A missing data
directory or audio file is a :class:`vqspeech.errors.UserError`; too few long utterances a
ValueError naming the directory.
"""

from __future__ import annotations

import numpy as np
import torch

from .audio import load_audio, mulaw_encode
from .kaldi_data_dir import read_data_dir


def load_crops(lm, data_dir: str, utterances: int, samples: int, pad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``samples`` samples of the data directory's first ``utterances`` utterances ->
    (B, samples) float waveforms and (B,) speaker indices of the model ``lm`` (0 for a speaker it
    does not know).  Shorter utterances are padded with silence when ``pad``, else skipped."""
    dd = read_data_dir(data_dir)
    wavs, speakers = [], []
    for utt in dd.utterances:
        if len(wavs) == utterances:
            break
        path, start, end = dd.audio_of(utt)
        wav = load_audio(path, lm.sample_rate, start, end)
        if len(wav) < samples and not pad:
            continue
        wavs.append(np.pad(wav, (0, max(0, samples - len(wav))))[:samples])
        spk = dd.utt2spk[utt]
        speakers.append(lm.speakers.index(spk) if spk in lm.speakers else 0)
    if not wavs:
        raise ValueError(f"{data_dir}: no utterance has the {samples} samples a crop needs")
    return torch.from_numpy(np.stack(wavs)).float(), torch.tensor(speakers)


@torch.no_grad()
def teacher_forcing_inputs(model, wav: torch.Tensor, speakers: torch.Tensor, frames: int | None = None):
    """(B, T) waveforms -> codes (B, F), true mu-law classes (B, T), and the decoder's frame
    features and speaker vectors (c, g) for ``model.decoder(inputs, c, g, hop)``; ``frames``
    keeps the first F codes only."""
    codes = model.encode(wav)["codes"][:, :frames]
    target = mulaw_encode(wav, model.decoder.cfg.quantization_channels).long()
    c, g = model.conditioning(model.quantizer.lookup(codes), speakers)
    return codes, target, c, g


def bits_per_sample(logits: torch.Tensor, target: torch.Tensor) -> float:
    """(B, Q, T) logits, (B, T) true classes -> mean negative log2-likelihood."""
    return torch.nn.functional.cross_entropy(logits.double(), target).item() / np.log(2)
