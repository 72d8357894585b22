"""``vqspeech prepare-librispeech``: Kaldi data directories from LibriSpeech subsets."""

from __future__ import annotations

import sys

from ..corpus_prep.librispeech import prepare_librispeech
from .prepared_corpus import print_prepared
from .runner import int_at_least, parser, run_user_command


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech prepare-librispeech",
               "LibriSpeech -> data dirs train (the training subsets less dev), dev (every N-th of them)\n"
               "and one per evaluation subset (dev-clean -> dev_clean); phones: 'vqspeech import-alignments'")
    p.add_argument("--librispeech-root", required=True, help="the LibriSpeech folder that holds the subsets")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--train-subsets", default="train-clean-100", help="comma-separated")
    p.add_argument("--eval-subsets", default="dev-clean,test-clean", help="comma-separated; may be empty")
    p.add_argument("--dev-every", type=int_at_least(2), default=100, help="every N-th training utterance goes to dev")
    args = p.parse_args(argv)

    def work() -> int:
        rep = prepare_librispeech(args.librispeech_root, args.out_dir, _names(args.train_subsets),
                                  _names(args.eval_subsets), args.dev_every)
        left_out = f"{rep.untranscribed} audio files without a transcript line" if rep.untranscribed else None
        print_prepared("LibriSpeech", rep.counts, rep.speakers, rep.splits, left_out)
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech prepare-librispeech")


if __name__ == "__main__":
    sys.exit(main())
