"""Forced phone alignment with pocketsphinx (its wheel carries an English acoustic model and
the CMU dictionary, so nothing is downloaded).

``vqspeech align --data-dir data/train [--jobs 2]`` writes ``data/train/phones.ctm`` and
``data/train/align_failures.txt``.  Utterances whose transcript has words missing from the
dictionary, or that fail to align, are listed and skipped, never silently dropped.
Phones are written in lower case without stress, silence as ``sil``.
"""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .alignments import PhoneInterval, write_ctm
from .kaldi_data_dir import read_data_dir
from .errors import UserError
from .fileio import atomic_write

FRAME_RATE = 100  # pocketsphinx frames per second


def _need_pocketsphinx():
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        raise UserError("forced alignment needs pocketsphinx: pip install 'vqspeech[eval]'") from None


def normalise_words(text: str) -> list[str]:
    """Transcript -> dictionary-style words: lower case, punctuation removed (apostrophes kept)."""
    text = text.lower().replace("-", " ")
    return [w for w in (re.sub(r"[^a-z']", "", t).strip("'") for t in text.split()) if w]


def _new_decoder():
    # A fresh decoder per utterance (0.13 s): a decoder reused after set_alignment() was seen
    # to fail later utterances with "Failed to stop utterance processing".
    from pocketsphinx import Decoder

    return Decoder(lm=None, samprate=16000, loglevel="FATAL")


def align_one(wav: np.ndarray, text: str) -> tuple[list[PhoneInterval] | None, list[str], str]:
    """16 kHz float waveform + transcript -> (phone intervals or None, OOV words, failure reason)."""
    dec = _new_decoder()
    words = normalise_words(text)
    oov = [w for w in words if dec.lookup_word(w) is None]
    if oov:
        return None, oov, f"words not in the dictionary: {' '.join(sorted(set(oov)))}"
    if not words:
        return None, [], "empty transcript"
    pcm = (np.clip(wav, -1, 1) * 32767).astype("<i2").tobytes()
    try:
        dec.set_align_text(" ".join(words))

        def run():
            dec.start_utt()
            dec.process_raw(pcm, full_utt=True)
            dec.end_utt()

        run()
        dec.set_alignment()
        run()
        alignment = dec.get_alignment()
    except RuntimeError as exc:
        return None, [], f"alignment failed ({exc})"
    if alignment is None:
        return None, [], "alignment failed (no path through the transcript)"
    out = []
    for word in alignment:
        for ph in word:
            name = "sil" if ph.name.upper() in ("SIL", "+NSN+", "+SPN+") else ph.name.lower()
            start = ph.start / FRAME_RATE
            out.append(PhoneInterval(start, start + ph.duration / FRAME_RATE, name))
    return (out or None), [], "" if out else "alignment failed (empty)"


def _job(args):
    utt, path, start, end, text = args
    from .audio import load_audio

    try:
        wav = load_audio(path, 16000, start, end)
    except UserError as exc:
        return utt, None, [], str(exc)
    return (utt, *align_one(wav, text))


@dataclass
class AlignReport:
    aligned: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    oov: Counter = field(default_factory=Counter)


def align_data_dir(data_dir: str | Path, jobs: int = 2) -> AlignReport:
    """Align every utterance of a data dir with a ``text`` file; write phones.ctm and the failures."""
    _need_pocketsphinx()
    data_dir = Path(data_dir)
    dd = read_data_dir(data_dir)
    if dd.text is None:
        raise UserError(f"{data_dir / 'text'}: transcripts are needed for forced alignment")
    work = [(u, *dd.audio_of(u), dd.text[u]) for u in dd.utterances]
    rep = AlignReport()
    result = {}
    with ProcessPoolExecutor(max(1, jobs)) as pool:
        for utt, ivs, oov, reason in pool.map(_job, work, chunksize=8):
            if ivs is None:
                rep.failed[utt] = reason
                rep.oov.update(oov)
            else:
                result[utt] = ivs
                rep.aligned += 1
    write_ctm(data_dir / "phones.ctm", result)
    with atomic_write(data_dir / "align_failures.txt") as fh:
        for utt, reason in rep.failed.items():
            fh.write(f"{utt} {reason}\n")
    return rep


def boundary_errors(reference: list[PhoneInterval], hypothesis: list[PhoneInterval]) -> np.ndarray:
    """For every inner reference boundary, the distance (s) to the nearest hypothesis boundary."""
    ref = np.array([iv.end for iv in reference[:-1]])
    hyp = np.array(sorted(iv.end for iv in hypothesis[:-1]))
    if len(ref) == 0 or len(hyp) == 0:
        return np.zeros(0)
    idx = np.clip(np.searchsorted(hyp, ref), 1, len(hyp) - 1) if len(hyp) > 1 else np.zeros(len(ref), int)
    return np.minimum(np.abs(hyp[idx] - ref), np.abs(hyp[np.maximum(idx - 1, 0)] - ref))
