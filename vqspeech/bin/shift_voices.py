"""``vqspeech shift-voices SRC DST --semitones=-4,-2,2,4``: more training voices from fewer
(see :mod:`vqspeech.corpus_prep.voice_shift`)."""

from __future__ import annotations

import sys

from .runner import parser, run_user_command, int_at_least


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech shift-voices", "Copy a data directory with every speaker also shifted by some semitones "
                                        "(formants and pitch together, duration kept): new voices for training.")
    p.add_argument("src", help="data directory")
    p.add_argument("dst", help="new data directory (its audio goes to DST/wav/)")
    p.add_argument("--semitones", required=True,
                   help="comma-separated shifts, e.g. --semitones=-4,-2,2,4 (with '=': a leading minus would "
                        "read as an option)")
    p.add_argument("--no-original", action="store_true", help="leave out the unshifted voices")
    p.add_argument("--sample-rate", type=int_at_least(1), default=16000)
    p.add_argument("--jobs", type=int_at_least(1), default=None, help="parallel processes (default: all cores)")
    args = p.parse_args(argv)

    def work() -> int:
        from ..corpus_prep.voice_shift import shift_voices
        from ..errors import UserError

        try:
            shifts = [float(s) for s in args.semitones.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--semitones: expected numbers separated by commas, got {args.semitones!r}") from None
        dd = shift_voices(args.src, args.dst, shifts, args.sample_rate, not args.no_original, args.jobs)
        print(f"{args.dst}: {len(dd.utt2spk)} utterances, {len(dd.speakers)} speakers")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech shift-voices")


if __name__ == "__main__":
    sys.exit(main())
