"""``vqspeech fix-data-dir``: repair a data directory as Kaldi's fix_data_dir.sh does."""

from __future__ import annotations

import sys

from .runner import parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    from ..kaldi_data_dir_fix import fix_data_dir

    p = parser("vqspeech fix-data-dir", "Kaldi's fix_data_dir.sh: sort, deduplicate, keep the utterances present "
                                            "in every table, regenerate spk2utt (in place).")
    p.add_argument("data_dir")
    args = p.parse_args(argv)

    def work() -> int:
        report = fix_data_dir(args.data_dir)
        for line in report.lines():
            print(f"{args.data_dir}: {line}")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech fix-data-dir")


if __name__ == "__main__":
    sys.exit(main())
