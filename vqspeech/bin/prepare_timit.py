"""``vqspeech prepare-timit``: Kaldi data directories, with phones.ctm, from a TIMIT tree."""

from __future__ import annotations

import sys

from ..corpus_prep.timit import prepare_timit
from .prepared_corpus import print_prepared
from .runner import int_at_least, parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech prepare-timit",
               "TIMIT (LDC93S1) -> data dirs train (TRAIN), dev (every 20th TRAIN sentence) and test\n"
               "(the core test set), each with phones.ctm from the .PHN files")
    p.add_argument("--timit-root", required=True, help="the folder holding TRAIN/ and TEST/")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--phones", default="39", choices=["39", "61"],
                   help="39: folded as Lee & Hon (closures and pauses to sil, q dropped); 61: as labelled")
    p.add_argument("--test-set", default="core", choices=["core", "complete"],
                   help="core: the 24-speaker core test set; complete: all 168 TEST speakers")
    p.add_argument("--include-sa", action="store_true", help="keep the two SA sentences every speaker reads")
    p.add_argument("--dev-every", type=int_at_least(2), default=20, help="every N-th TRAIN sentence goes to dev")
    args = p.parse_args(argv)

    def work() -> int:
        rep = prepare_timit(args.timit_root, args.out_dir, args.phones, args.test_set, args.include_sa,
                            args.dev_every)
        left_out = ", ".join(f"{reason} ({n})" for reason, n in rep.skipped.items())
        print_prepared("TIMIT", rep.counts, rep.speakers, rep.splits, left_out, " (with phones.ctm)")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech prepare-timit")


if __name__ == "__main__":
    sys.exit(main())
