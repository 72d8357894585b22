"""``vqspeech make-mini-corpus``: synthesize the mini corpus."""

from __future__ import annotations

import sys

from ..corpus_prep.mini import __doc__ as _MINI_DOC, build_mini_corpus
from .runner import parser, run_user_command, int_at_least


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech make-mini-corpus", _MINI_DOC.split("\n\n")[0])
    p.add_argument("--out-dir", required=True, help="where wav/ and data/ are written")
    p.add_argument("--num-sentences", type=int_at_least(3), default=200, help="sentences per speaker")
    p.add_argument("--extra-train-sentences", type=int_at_least(0), default=0,
                   help="also write data/train_large: train plus the next M Harvard sentences (dev/test unchanged)")
    p.add_argument("--speakers", default="", help="comma-separated subset of speakers (default: all available)")
    p.add_argument("--jobs", type=int_at_least(1), default=None, help="parallel synthesis processes")
    p.add_argument("--force", action="store_true", help="re-synthesize even when up to date")
    args = p.parse_args(argv)

    def work() -> int:
        splits = build_mini_corpus(args.out_dir, args.num_sentences,
                                   [s for s in args.speakers.split(",") if s] or None, args.jobs, args.force,
                                   extra_train_sentences=args.extra_train_sentences)
        for name, path in splits.items():
            print(f"wrote {path}")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech make-mini-corpus")


if __name__ == "__main__":
    sys.exit(main())
