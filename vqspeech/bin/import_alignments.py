"""``vqspeech import-alignments``: TextGrid / TIMIT .PHN / HTK .lab files -> a data directory's phones.ctm."""

from __future__ import annotations

import sys
from pathlib import Path

from ..alignment_import import FOLDS, SUFFIXES, import_alignments
from ..alignments import write_ctm
from ..errors import UserError
from ..kaldi_data_dir import read_data_dir
from .runner import int_at_least, parser, run_user_command

EXAMPLES = """examples:
  vqspeech import-alignments --data-dir data/test mfa_out/            # Montreal Forced Aligner TextGrids
  vqspeech import-alignments --data-dir data/test --fold timit39 TIMIT/TEST/   # dr1/fcjf0/sa1.phn -> fcjf0_sa1
"""


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech import-alignments",
               "Gather phone alignments made by other tools (one file per utterance, named <utt>.<ext>\n"
               "or <folder>/<stem>.<ext> for utterance <folder>_<stem>) into DATA_DIR/phones.ctm, which\n"
               "'vqspeech phone-report' reads.", EXAMPLES)
    p.add_argument("sources", nargs="+", metavar="SRC", help="alignment files, or folders searched recursively")
    p.add_argument("--data-dir", required=True, help="the data directory whose utterances the files align")
    p.add_argument("--format", default="auto", choices=["auto", *SUFFIXES],
                   help="auto: by suffix (.TextGrid, .phn, .lab, in any case)")
    p.add_argument("--tier", default="phones", help="TextGrid: the interval tier of phones")
    p.add_argument("--sample-rate", type=int_at_least(1), default=16000, help="TIMIT .PHN: samples per second")
    p.add_argument("--fold", default="none", choices=list(FOLDS),
                   help="timit39: TIMIT's 61 phones to 39 (closures and pauses to sil, q dropped)")
    p.add_argument("--force", action="store_true", help="replace an existing DATA_DIR/phones.ctm")
    p.add_argument("--allow-none", action="store_true",
                   help="when no file names an utterance of DATA_DIR, say so and write nothing (exit 0)")
    args = p.parse_args(argv)

    def work() -> int:
        dd = read_data_dir(args.data_dir)
        target = Path(args.data_dir) / "phones.ctm"
        if target.exists() and not args.force:
            raise UserError(f"{target} exists; --force replaces it")
        got = import_alignments(args.sources, dd.utterances, args.format, args.tier, args.sample_rate, args.fold,
                                require_match=not args.allow_none)
        if not got.alignment:
            print(f"{args.data_dir}: none of the {got.files} alignment files names one of its utterances; "
                  "nothing written")
            return 0
        write_ctm(target, got.alignment)
        print(f"{target}: {len(got.alignment)} utterances, {got.phones} phones, from {got.files} files")
        if got.unaligned_utterances:
            print(f"{len(got.unaligned_utterances)} of {len(dd.utterances)} utterances have no alignment file "
                  f"(e.g. {', '.join(got.unaligned_utterances[:3])}); phone-report counts them as missing")
        if got.unmatched_files:
            print(f"{len(got.unmatched_files)} files name no utterance of {args.data_dir} "
                  f"(e.g. {', '.join(map(str, got.unmatched_files[:3]))})")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech import-alignments")


if __name__ == "__main__":
    sys.exit(main())
