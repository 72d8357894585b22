"""Intelligibility: word error rate of pocketsphinx recognition (its own English model and LM)."""

from __future__ import annotations

import numpy as np

from .deps import require


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
            prev, d[j] = d[j], cur
    return d[len(hyp)]


_decoder = None


def recognise(wav: np.ndarray) -> list[str]:
    """16 kHz waveform -> recognised words (lower case, fillers removed)."""
    global _decoder
    ps = require("pocketsphinx")
    if _decoder is None:  # loading the language model takes most of a second; reuse it
        _decoder = ps.Decoder(samprate=16000, loglevel="FATAL")
    dec = _decoder
    pcm = (np.clip(wav, -1, 1) * 32767).astype("<i2").tobytes()
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    hyp = dec.hyp()
    words = hyp.hypstr.split() if hyp is not None else []
    return [w.lower() for w in words if not w.startswith("<") and not w.startswith("[")]


def word_errors(text: str, wav: np.ndarray) -> tuple[int, int, list[str]]:
    """(errors, reference words, hypothesis) for one utterance."""
    from ..forced_align import normalise_words

    ref = normalise_words(text)
    hyp = recognise(wav)
    return edit_distance(ref, hyp), len(ref), hyp
