"""``vqspeech align``: pocketsphinx forced alignment into phones.ctm."""

from __future__ import annotations

import sys

from ..forced_align import align_data_dir
from .runner import parser, run_user_command, int_at_least


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech align", "Forced phone alignment with pocketsphinx.")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--jobs", type=int_at_least(1), default=2)
    args = p.parse_args(argv)

    def work() -> int:
        rep = align_data_dir(args.data_dir, args.jobs)
        total = rep.aligned + len(rep.failed)
        print(f"{args.data_dir}/phones.ctm: aligned {rep.aligned}/{total} utterances; "
              f"{len(rep.failed)} skipped (listed in align_failures.txt)")
        if rep.oov:
            print(f"words missing from the dictionary ({len(rep.oov)}): "
                  + ", ".join(f"{w} ({c})" for w, c in rep.oov.most_common(20)))
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech align")


if __name__ == "__main__":
    sys.exit(main())
