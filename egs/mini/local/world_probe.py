"""Would a source-filter vocoder voice the spectral decoder's frames better than Griffin-Lim?

    python local/world_probe.py --model exp/spectral_mel_melenc_histadv03_long/checkpoint.pt
                                [--sentences 2] [--lifters 30,60,120]       (run from egs/mini)

Converts the parallel test sentences between every pair of speakers (as stage 6 does) and scores
by pocketsphinx WER:
- ``griffin-lim``: the shipped vocoder on the predicted frames;
- ``world-analysis-synthesis`` (same-speaker pairs only): WORLD (pyworld) re-synthesizing the real
  recording from its own F0, envelope and aperiodicity, the ceiling of this vocoder;
- ``world-lifterN``: WORLD with the *source's* F0 (DIO + StoneMask), mapped to the target's
  log-F0 mean and deviation (10 training utterances per speaker), the source's aperiodicity (D4C),
  and the envelope from the predicted frames: their NNLS linear magnitude smoothed by keeping N
  cepstral coefficients, scaled to CheapTrick's envelope by a per-bin offset fitted on one
  training utterance per speaker.
Needs the ``eval`` extra (pyworld), which ``make setup`` installs.
"""

import argparse
import random
import time
import warnings

import numpy as np
import torch

from vqspeech.audio import load_audio
from vqspeech.checkpoint import load_model
from vqspeech.conversion import encode_wav, speaker_batch
from vqspeech.kaldi_data_dir import read_data_dir
from vqspeech.vc_eval.intelligibility import word_errors
from vqspeech.vc_eval.report import parallel_sentences
from vqspeech.vocoders import griffin_lim

warnings.filterwarnings("ignore", message="pkg_resources")
import pyworld as pw  # noqa: E402


def world_analysis(x: np.ndarray, fs: int, period_ms: float):
    """(T,) audio -> F0 (F,), frame times (F,), aperiodicity (F, 513)."""
    x = x.astype(np.float64)
    f0, t = pw.dio(x, fs, frame_period=period_ms)
    f0 = pw.stonemask(x, f0, t, fs)
    return f0, t, pw.d4c(x, f0, t, fs)


def lifter(log_mag: np.ndarray, keep: int) -> np.ndarray:
    """(F, bins) natural-log magnitudes -> the same with only the first ``keep`` cepstral coefficients."""
    c = np.fft.irfft(log_mag, axis=-1)
    c[:, keep:-keep + 1] = 0
    return np.fft.rfft(c, axis=-1).real


def _normalised(y: np.ndarray) -> np.ndarray:
    return np.clip(y / max(1e-3, float(np.abs(y).max())) * 0.9, -1, 1).astype(np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--sentences", type=int, default=2)
    p.add_argument("--lifters", default="30,60,120", help="cepstral coefficients kept, comma-separated")
    args = p.parse_args()
    lm = load_model(args.model)
    model, fs = lm.model, lm.sample_rate
    d = model.cfg.decoder_conf
    period = 1000 * d.frame_hop / fs
    keeps = [int(k) for k in args.lifters.split(",")]
    test, train = read_data_dir("data/test"), read_data_dir("data/train")
    speakers = [s for s in test.speakers if s in lm.speakers]
    first_utts = {s: sorted(u for u, sp in train.utt2spk.items() if sp == s) for s in speakers}
    log_f0 = {}
    offsets = {k: [] for k in keeps}
    with torch.no_grad():
        for s in speakers:
            values = []
            for i, u in enumerate(first_utts[s][:10]):
                path, a, b = train.audio_of(u)
                x = load_audio(path, fs, a, b)
                f0, t, _ = world_analysis(x, fs, period)
                values.append(np.log(f0[f0 > 0]))
                if i == 0:  # the envelope calibration
                    sp = pw.cheaptrick(x.astype(np.float64), f0, t, fs)
                    mag = model.linear_magnitude(model.target_frames(torch.tensor(x)[None]))[0].numpy().T
                    n = min(len(sp), len(mag))
                    for k in keeps:
                        est = lifter(np.log(np.maximum(mag[:n], 1e-5)), k)
                        offsets[k].append(np.median(0.5 * np.log(sp[:n] + 1e-20) - est, axis=0))
            values = np.concatenate(values)
            log_f0[s] = (values.mean(), values.std())
    offset = {k: np.mean(v, axis=0) for k, v in offsets.items()}
    by_sentence, sentences = parallel_sentences(test.utt2spk, speakers, args.sentences, random.Random(0), "data/test")
    rows = ["griffin-lim", "world-analysis-synthesis"] + [f"world-lifter{k}" for k in keeps]
    errs = {r: [0, 0, 0, 0] for r in rows}  # converted errors, words, resynthesis errors, words

    def score(row, text, wav, same):
        e, n, _ = word_errors(text, wav)
        errs[row][2 if same else 0] += e
        errs[row][3 if same else 1] += n

    t0 = time.perf_counter()
    with torch.no_grad():
        for sent in sentences:
            for s in speakers:
                path, a, b = test.audio_of(by_sentence[sent][s])
                x = load_audio(path, fs, a, b)
                codes = encode_wav(model, x, sample_rate=fs)
                f0, t, ap = world_analysis(x, fs, period)
                for tg in speakers:
                    text = test.text[by_sentence[sent][tg]]
                    same = s == tg
                    mag = model.linear_magnitude(model.frames(codes[None], speaker_batch(model, [lm.speakers.index(tg)], "cpu")))
                    score("griffin-lim", text, griffin_lim(mag, d.n_fft, d.frame_hop).clamp(-1, 1)[0].numpy(), same)
                    if same:
                        sp = pw.cheaptrick(x.astype(np.float64), f0, t, fs)
                        score("world-analysis-synthesis", text, _normalised(pw.synthesize(f0, sp, ap, fs, period)), True)
                    m = mag[0].numpy().T
                    m = np.concatenate([m, np.repeat(m[-1:], max(0, len(f0) - len(m)), 0)])[: len(f0)]
                    (ms, ss), (mt, st) = log_f0[s], log_f0[tg]
                    f0c = np.where(f0 > 0, np.exp((np.log(np.maximum(f0, 1e-3)) - ms) / ss * st + mt), 0.0)
                    for k in keeps:
                        env = np.ascontiguousarray(np.exp(2 * (lifter(np.log(np.maximum(m, 1e-5)), k) + offset[k])))
                        score(f"world-lifter{k}", text, _normalised(pw.synthesize(f0c, env, ap, fs, period)), same)
    print(f"| vocoder ({len(sentences)} sentences, {len(speakers)} speakers) | converted WER | resynthesis WER |")
    print("|---|---:|---:|")
    for r, (ce, cn, re_, rn) in errs.items():
        conv = f"{100 * ce / cn:.1f}% ({ce} / {cn})" if cn else ""
        print(f"| {r} | {conv} | {100 * re_ / rn:.1f}% ({re_} / {rn}) |")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    # a model or data directory that does not read: one line, exit 2
    raise SystemExit(run_user_command(main, prog=__file__.rsplit("/", 1)[-1]))
