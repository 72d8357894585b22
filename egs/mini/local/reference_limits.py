"""How much reference audio an unheard voice needs, and what noise in it does.

Converts test utterances of the other speakers to a held-out voice given by references of
several lengths (its dev utterances, concatenated and cut) and with white noise added at several
signal-to-noise ratios, and scores each condition: resemblyzer similarity of the conversions to
the held-out voice's centroid (from its *test* utterances, which no reference uses) and to the
nearest training speaker, identification among all test speakers, and pocketsphinx WER. A
reference the checks refuse (too little speech) is reported with its one-line error.

    python local/reference_limits.py --model exp/reference_melenc/checkpoint.pt --target rms   (from egs/mini)
"""

import argparse
from pathlib import Path

import numpy as np

from vqspeech.audio import load_audio
from vqspeech.checkpoint import load_model
from vqspeech.conversion import convert
from vqspeech.errors import UserError
from vqspeech.kaldi_data_dir import read_data_dir
from vqspeech.speaker_reference import EMBED_RATE, embed_reference_clips
from vqspeech.vc_eval.intelligibility import word_errors
from vqspeech.vc_eval.speaker_similarity import centroids_from_data_dir, embed

SECONDS = (0.5, 1.5, 3.0, 6.0, 12.0)
SNRS_DB = (20.0, 10.0, 0.0)          # white noise added to the 6 s reference


def utterances(dd, speaker, count=None):
    for utt in dd.spk2utt[speaker][:count]:
        path, start, end = dd.audio_of(utt)
        yield utt, path, start, end


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--target", required=True, help="the held-out speaker")
    p.add_argument("--test-data", default="data/test")
    p.add_argument("--reference-data", default="data/dev")
    p.add_argument("--sources", type=int, default=3, help="test utterances per other speaker")
    p.add_argument("--output", default=None, help="markdown table (default: exp/<model dir>/reference_limits.md)")
    args = p.parse_args(argv)
    lm = load_model(args.model)
    sr = lm.sample_rate
    test, refs = read_data_dir(args.test_data), read_data_dir(args.reference_data)
    others = [s for s in test.speakers if s != args.target]
    centroids = centroids_from_data_dir(test, test.speakers, sr, 10, args.test_data)
    sources = [(utt, load_audio(path, sr, start, end), test.text[utt])
               for s in others for utt, path, start, end in utterances(test, s, args.sources)]
    pool = np.concatenate([load_audio(path, EMBED_RATE, start, end)
                           for _, path, start, end in utterances(refs, args.target)])
    rng = np.random.default_rng(0)
    conditions = [(f"{s:g} s", pool[: int(s * EMBED_RATE)]) for s in SECONDS]
    six = pool[: int(6 * EMBED_RATE)]
    for snr in SNRS_DB:
        noise = rng.standard_normal(len(six)).astype(np.float32)
        noise *= np.sqrt(np.mean(six ** 2) / np.mean(noise ** 2) / 10 ** (snr / 10))
        conditions.append((f"6 s, white noise at {snr:g} dB SNR", np.clip(six + noise, -1, 1)))
    rows = ["| reference | similarity to the target | to the nearest training speaker | identified as the target "
            "| WER |", "|---|---:|---:|---:|---:|"]
    training = [s for s in lm.speakers]
    for name, wav in conditions:
        try:
            target = embed_reference_clips([(name, wav)], model=lm.model)
        except UserError as exc:
            rows.append(f"| {name} | refused: {exc} | | | |")
            print(rows[-1], flush=True)
            continue
        sim, near, hit, errors, words = [], [], 0, 0, 0
        for utt, audio, text in sources:
            out = convert(lm.model, audio, target, sr).wav
            e = embed(out, sr)
            sim.append(centroids.similarity(e, args.target))
            near.append(max(centroids.similarity(e, s) for s in training if s in centroids.speakers))
            hit += centroids.identify(e) == args.target
            err, n, _ = word_errors(text, out)
            errors, words = errors + err, words + n
        rows.append(f"| {name} | {np.mean(sim):.3f} | {np.mean(near):.3f} | {100 * hit / len(sources):.0f}% | "
                    f"{100 * errors / words:.1f}% |")
        print(rows[-1], flush=True)
    out = Path(args.output) if args.output else Path(args.model).parent / "reference_limits.md"
    out.write_text("\n".join(rows) + "\n")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    # a model or data directory that does not read: one line, exit 2
    raise SystemExit(run_user_command(main, prog=__file__.rsplit("/", 1)[-1]))
