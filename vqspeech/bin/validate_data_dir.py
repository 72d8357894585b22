"""``vqspeech validate-data-dir``: Kaldi's verdicts on a data directory."""

from __future__ import annotations

import sys

from .runner import parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    from ..kaldi_data_dir import read_data_dir

    p = parser("vqspeech validate-data-dir", "Check a Kaldi data directory (sorting, keys, consistency, audio).")
    p.add_argument("data_dir")
    p.add_argument("--no-audio", action="store_true", help="skip opening the audio files")
    args = p.parse_args(argv)

    def work() -> int:
        dd = read_data_dir(args.data_dir, check_audio=not args.no_audio)
        extra = [name for name, t in (("text", dd.text), ("segments", dd.segments), ("utt2dur", dd.utt2dur))
                 if t is not None] + dd.optional_tables
        print(f"{args.data_dir}: OK: {len(dd.utt2spk)} utterances, {len(dd.speakers)} speakers"
              + (f" (+ {', '.join(extra)})" if extra else ""))
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech validate-data-dir")


if __name__ == "__main__":
    sys.exit(main())
