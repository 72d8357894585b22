"""Does a recognised hypothesis depend on the utterances recognised before it? The first N
utterances of a data set recognised forward and then backward by one recogniser, and each by a
new recogniser, with the corpus WER of each pass and how many hypotheses differ.

    python local/recognition_order.py [--data-dir data/test] [--utterances 60]   (run from egs/mini)
"""

import argparse

from vqspeech.audio import load_audio
from vqspeech.forced_align import normalise_words
from vqspeech.kaldi_data_dir import read_data_dir
from vqspeech.vc_eval import intelligibility
from vqspeech.vc_eval.intelligibility import edit_distance, recognise


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="data/test")
    p.add_argument("--utterances", type=int, default=60)
    args = p.parse_args()
    dd = read_data_dir(args.data_dir)
    utts = dd.utterances[:args.utterances]
    wavs = {}
    for u in utts:
        path, start, end = dd.audio_of(u)
        wavs[u] = load_audio(path, 16000, start, end)

    def wer(hyps):
        refs = {u: normalise_words(dd.text[u]) for u in utts}
        return 100 * sum(edit_distance(refs[u], hyps[u]) for u in utts) / sum(len(r) for r in refs.values())

    intelligibility._decoder = None
    forward = {u: recognise(wavs[u]) for u in utts}
    backward = {u: recognise(wavs[u]) for u in reversed(utts)}
    alone = {}
    for u in utts:
        intelligibility._decoder = None  # a new recogniser
        alone[u] = recognise(wavs[u])
    words = sum(len(normalise_words(dd.text[u])) for u in utts)
    print(f"{len(utts)} utterances of {args.data_dir}, {words} words: WER forward {wer(forward):.1f}%, "
          f"backward {wer(backward):.1f}%, each by a new recogniser {wer(alone):.1f}%; hypotheses that differ "
          f"forward / backward {sum(forward[u] != backward[u] for u in utts)}, "
          f"forward / new {sum(forward[u] != alone[u] for u in utts)}")


if __name__ == "__main__":
    main()
