"""Speaker similarity with resemblyzer d-vectors (a pretrained GE2E speaker encoder in its wheel)."""

from __future__ import annotations

import numpy as np

from .deps import require

_encoder = None


def voice_encoder():
    """(the resemblyzer module, its VoiceEncoder on the CPU), loaded once per process."""
    global _encoder
    resemblyzer = require("resemblyzer")
    if _encoder is None:
        _encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)
    return resemblyzer, _encoder


def embed(wav: np.ndarray, sr: int = 16000) -> np.ndarray:
    """(T,) waveform -> (256,) unit-norm d-vector."""
    resemblyzer, encoder = voice_encoder()
    return encoder.embed_utterance(resemblyzer.preprocess_wav(wav.astype(np.float32), sr))


def centroids_from_data_dir(dd, speakers, sr: int, per_speaker: int, source) -> "SpeakerCentroids":
    """Centroids of the first ``per_speaker`` utterances of each speaker of data dir ``dd``."""
    from ..audio import load_audio
    from ..errors import UserError

    emb = {}
    for spk in speakers:
        utts = dd.spk2utt.get(spk, [])[:per_speaker]
        if not utts:
            raise UserError(f"{source}: no utterances of speaker {spk!r} to build its centroid")
        emb[spk] = []
        for u in utts:
            path, start, end = dd.audio_of(u)
            emb[spk].append(embed(load_audio(path, sr, start, end), sr))
    return SpeakerCentroids(emb)


class SpeakerCentroids:
    """Per-speaker mean d-vector (re-normalised) from real utterances."""

    def __init__(self, embeddings: dict[str, list[np.ndarray]]):
        self.speakers = sorted(embeddings)
        c = np.stack([np.mean(embeddings[s], axis=0) for s in self.speakers])
        self.centroids = c / np.linalg.norm(c, axis=1, keepdims=True)

    def similarity(self, e: np.ndarray, speaker: str) -> float:
        return float(self.centroids[self.speakers.index(speaker)] @ e)

    def identify(self, e: np.ndarray) -> str:
        return self.speakers[int(np.argmax(self.centroids @ e))]
