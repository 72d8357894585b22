"""More training voices from fewer: every speaker of a data directory re-spoken a few semitones
higher or lower, with the whole spectrum (formants included) scaled and the duration kept.

Scaling the spectral envelope by 2^(n/12) mimics a shorter or longer vocal tract (the idea of
vocal-tract-length perturbation), so each shift is heard, and embedded by a speaker encoder,
as another voice; phone timing is unchanged, so ``phones.ctm`` carries over. A model that maps
speaker embeddings to voices (``speaker_conditioning: reference``) then sees many points of the
embedding space instead of the corpus's few.

Shifted speaker ``awb`` by +2 semitones is ``awb+2st``; its utterance ``awb_h006`` is
``awb+2st_h006`` (an utterance id that does not start with its speaker's id gets the new
speaker id and ``_`` in front). Audio goes to ``<out>/wav/<speaker>/<utt>.wav``, and
``<out>/utt2origin`` names the utterance each one was made from (for parallel partners without
transcripts, ``decoder_conf.parallel_partners: origin``).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..alignments import read_ctm, write_ctm
from ..audio import load_audio, save_audio
from ..errors import UserError
from ..kaldi_data_dir import DataDir, read_data_dir, read_table, write_data_dir, write_table

UTT2ORIGIN = "utt2origin"


def shifted_speaker(speaker: str, semitones: float) -> str:
    """``awb``, 2 -> ``awb+2st``; 0 keeps the id."""
    if semitones == 0:
        return speaker
    return f"{speaker}{semitones:+g}st"


def _shifted_utt(utt: str, speaker: str, new_speaker: str) -> str:
    return new_speaker + utt[len(speaker):] if utt.startswith(speaker) else f"{new_speaker}_{utt}"


def shift_voice(wav: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """(T,) -> (T,) the same speech with every frequency scaled by 2^(semitones / 12) (phase-vocoder
    time stretch, then resampling back to ``T`` samples)."""
    if semitones == 0:
        return wav
    import librosa

    return librosa.effects.pitch_shift(wav.astype(np.float32), sr=sample_rate, n_steps=semitones,
                                       res_type="soxr_hq").astype(np.float32)


def _job(args):
    path, start, end, sample_rate, semitones, out = args
    wav = load_audio(path, sample_rate, start, end)
    save_audio(out, shift_voice(wav, sample_rate, semitones), sample_rate)
    return out


def shift_voices(src: str | os.PathLike, dst: str | os.PathLike, semitones: list[float], sample_rate: int = 16000,
                 keep_original: bool = True, jobs: int | None = None, progress: bool = True) -> DataDir:
    """Write the data directory ``dst``: every utterance of ``src`` once per shift in ``semitones``
    (and unshifted when ``keep_original``), audio under ``dst/wav/``; text, utt2dur and
    phones.ctm carried over. Returns the new data directory."""
    if not semitones or any(abs(s) > 12 for s in semitones):
        raise UserError(f"--semitones: give shifts within an octave, e.g. -4,-2,2,4 (got {semitones})")
    shifts = sorted(set(([0.0] if keep_original else []) + [float(s) for s in semitones if s != 0]))
    dd = read_data_dir(src)
    dst = Path(dst)
    ctm = read_ctm(Path(src) / "phones.ctm") if (Path(src) / "phones.ctm").is_file() else None
    out = DataDir(wav_scp={}, utt2spk={}, text={} if dd.text is not None else None,
                  utt2dur={} if dd.utt2dur is not None else None)
    new_ctm = {}
    origin = {}
    work = []
    for utt in dd.utterances:
        spk = dd.utt2spk[utt]
        path, start, end = dd.audio_of(utt)
        for s in shifts:
            new_spk = shifted_speaker(spk, s)
            new_utt = _shifted_utt(utt, spk, new_spk)
            wav_path = (dst / "wav" / new_spk / f"{new_utt}.wav").resolve()
            out.wav_scp[new_utt] = str(wav_path)
            out.utt2spk[new_utt] = new_spk
            origin[new_utt] = utt
            if out.text is not None:
                out.text[new_utt] = dd.text[utt]
            if out.utt2dur is not None and utt in dd.utt2dur:
                out.utt2dur[new_utt] = dd.utt2dur[utt]
            if ctm is not None and utt in ctm:
                new_ctm[new_utt] = ctm[utt]
            work.append((path, start, end, sample_rate, s, wav_path))
    with ProcessPoolExecutor(jobs or os.cpu_count() or 1) as pool:
        done = pool.map(_job, work, chunksize=8)
        if progress:
            from tqdm import tqdm

            done = tqdm(done, total=len(work), desc="shift-voices", unit="utt", disable=None)
        for _ in done:
            pass
    write_data_dir(dst, out)
    write_table(dst / UTT2ORIGIN, origin)
    if ctm is not None:
        write_ctm(dst / "phones.ctm", new_ctm)
    return read_data_dir(dst)


def read_origins(data_dir: str | os.PathLike, utterances) -> dict[str, str]:
    """``<data_dir>/utt2origin`` as {utterance: the utterance it was made from}; a DataDirError
    naming file and line for a malformed line, or an utterance the directory does not have."""
    from ..errors import DataDirError

    path = Path(data_dir) / UTT2ORIGIN
    if not path.is_file():
        raise DataDirError(f"{path}: not found (vqspeech shift-voices writes it: each utterance's source)")
    known = set(utterances)
    out = {}
    for no, utt, source in read_table(path):
        if utt not in known:
            raise DataDirError(f"{path}:{no}: utterance {utt!r} is not in {Path(data_dir) / 'utt2spk'}")
        out[utt] = source
    return out
