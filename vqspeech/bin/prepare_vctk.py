"""``vqspeech prepare-vctk``: Kaldi data directories from a VCTK tree."""

from __future__ import annotations

import sys

from ..corpus_prep.vctk import prepare_vctk
from .runner import parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech prepare-vctk", "VCTK (0.80 or 0.92) -> Kaldi data dirs")
    p.add_argument("--vctk-root", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--mic", default="mic1", help="0.92 only: mic1 or mic2")
    p.add_argument("--heldout-speakers", default="", help="comma-separated speakers kept out of train/dev")
    p.add_argument("--test-sentences", default="1-24", help="sentence numbers for the test split")
    args = p.parse_args(argv)

    def work() -> int:
        rep = prepare_vctk(args.vctk_root, args.out_dir, args.mic,
                           [s for s in args.heldout_speakers.split(",") if s], args.test_sentences)
        print(f"VCTK {rep.layout}: " + ", ".join(f"{n}={c}" for n, c in rep.counts.items()) + " utterances")
        if rep.skipped_no_text:
            total = sum(rep.skipped_no_text.values())
            print(f"skipped {total} utterances without transcript: "
                  + ", ".join(f"{s}={c}" for s, c in rep.skipped_no_text.items()))
        for name, path in rep.splits.items():
            print(f"wrote {path}")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech prepare-vctk")


if __name__ == "__main__":
    sys.exit(main())
