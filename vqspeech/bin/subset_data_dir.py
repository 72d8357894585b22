"""``vqspeech subset-data-dir``: a data directory without some speakers (for held-out-speaker tests)."""

from __future__ import annotations

import sys

from .runner import parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech subset-data-dir", "Copy a data directory without the utterances of some speakers, fixed "
                                           "as fix-data-dir does (phones.ctm filtered too).")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--exclude-speakers", required=True, help="comma-separated speaker ids to leave out")
    args = p.parse_args(argv)

    def work() -> int:
        from ..kaldi_data_dir_fix import subset_data_dir

        report = subset_data_dir(args.src, args.dst, [s for s in args.exclude_speakers.split(",") if s])
        for line in report.lines():
            print(f"{args.dst}: {line}")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech subset-data-dir")


if __name__ == "__main__":
    sys.exit(main())
