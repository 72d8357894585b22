"""Does sharpening the spectral decoder's frames before Griffin-Lim help intelligibility?

    python local/postfilter_study.py --model exp/spectral_mel_melenc_long/checkpoint.pt [--sentences 6]
                                     [--variants base,gl100,time1.3,...]          (run from egs/mini)

Converts the parallel test sentences between every pair of speakers (as stage 6 does, more
sentences if asked) and scores each post-filter variant by pocketsphinx WER on the same
predicted frames. Variants: ``base`` (as shipped), ``glN`` (N Griffin-Lim iterations),
``timeK`` (each band's deviation from its utterance mean scaled by K), ``freqK`` (each frame's
deviation from its 9-band moving average scaled by K), ``contrastK`` (the band-by-frame
interaction scaled by K: each frame's spectral shape sharpened, the utterance's mean envelope
and the loudness contour kept), combinations joined by ``+``. Each variant after the first is
also given its paired WER difference from the first, with a 95% bootstrap interval over the
utterances (as ``vqspeech vc-compare`` computes it).
"""

import argparse
import random
import time

import numpy as np
import torch
import torch.nn.functional as F

from vqspeech.audio import load_audio
from vqspeech.checkpoint import load_model
from vqspeech.conversion import encode_wav, speaker_batch
from vqspeech.kaldi_data_dir import read_data_dir
from vqspeech.vc_eval.intelligibility import wer_interval, word_errors
from vqspeech.vc_eval.report import parallel_sentences
from vqspeech.vocoders import griffin_lim


def postfilter(frames: torch.Tensor, variant: str) -> tuple[torch.Tensor, int]:
    """(1, bins, F) log frames -> filtered frames and the Griffin-Lim iterations."""
    iterations = 32
    for part in variant.split("+"):
        if part == "base":
            continue
        if part.startswith("gl"):
            iterations = int(part[2:])
        elif part.startswith("time"):
            k = float(part[4:])
            mean = frames.mean(-1, keepdim=True)
            frames = mean + k * (frames - mean)
        elif part.startswith("contrast"):
            k = float(part[8:])
            band, level = frames.mean(-1, keepdim=True), frames.mean(-2, keepdim=True)
            additive = band + level - band.mean(-2, keepdim=True)
            frames = additive + k * (frames - additive)
        elif part.startswith("freq"):
            k = float(part[4:])
            smooth = F.avg_pool1d(F.pad(frames.transpose(1, 2), (4, 4), mode="replicate"), 9, 1).transpose(1, 2)
            frames = smooth + k * (frames - smooth)
        else:
            raise SystemExit(f"unknown variant part {part!r}")
    return frames, iterations


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", default="data/test")
    p.add_argument("--sentences", type=int, default=2)
    p.add_argument("--variants", default="base,gl100,time1.2,time1.4,freq1.5")
    args = p.parse_args()
    lm = load_model(args.model)
    model = lm.model
    test = read_data_dir(args.data_dir)
    speakers = [s for s in test.speakers if s in lm.speakers]
    by_sentence, sentences = parallel_sentences(test.utt2spk, speakers, args.sentences, random.Random(0), args.data_dir)
    variants = args.variants.split(",")
    d = model.cfg.decoder_conf
    errs = {v: {"converted": [], "resynthesis": []} for v in variants}  # per utterance: (errors, words)
    t0 = time.perf_counter()
    with torch.no_grad():
        for sent in sentences:
            for s in speakers:
                path, start, end = test.audio_of(by_sentence[sent][s])
                codes = encode_wav(model, load_audio(path, lm.sample_rate, start, end), sample_rate=lm.sample_rate)
                for t in speakers:
                    text = test.text[by_sentence[sent][t]]
                    frames = model.frames(codes[None], speaker_batch(model, [lm.speakers.index(t)], "cpu"))
                    for v in variants:
                        f, it = postfilter(frames, v)
                        wav = griffin_lim(model.linear_magnitude(f), d.n_fft, d.frame_hop, iterations=it).clamp(-1, 1)
                        e, n, _ = word_errors(text, wav[0].numpy())
                        errs[v]["resynthesis" if s == t else "converted"].append((e, n))
    print(f"| variant ({len(sentences)} sentences, {len(speakers)} speakers) | converted WER | resynthesis WER |")
    print("|---|---:|---:|")
    for v, kinds in errs.items():
        cells = []
        for kind, pairs in kinds.items():
            e, n = np.array(pairs).T
            cell = f"{100 * e.sum() / n.sum():.1f}% ({e.sum()} / {n.sum()})"
            if v != variants[0]:  # paired against the first variant: the same utterances and words
                e0 = np.array(errs[variants[0]][kind])[:, 0]
                lo, hi = wer_interval(e - e0, n)
                cell += f", {100 * (e - e0).sum() / n.sum():+.1f} ({100 * lo:+.1f} to {100 * hi:+.1f})"
            cells.append(cell)
        print(f"| {v} | {' | '.join(cells)} |")
    print(f"({time.perf_counter() - t0:.0f} s; after the first row: the paired difference from it in points, "
          "with its 95% interval)")


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    # a model or data directory that does not read: one line, exit 2
    raise SystemExit(run_user_command(main, prog=__file__.rsplit("/", 1)[-1]))
