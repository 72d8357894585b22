"""Speaker similarity with resemblyzer d-vectors (a pretrained GE2E speaker encoder in its wheel)."""

from __future__ import annotations

import numpy as np

from .deps import require

_encoder = None


def embed(wav: np.ndarray, sr: int = 16000) -> np.ndarray:
    """(T,) waveform -> (256,) unit-norm d-vector."""
    global _encoder
    resemblyzer = require("resemblyzer")
    if _encoder is None:
        _encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)
    return _encoder.embed_utterance(resemblyzer.preprocess_wav(wav.astype(np.float32), sr))


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
