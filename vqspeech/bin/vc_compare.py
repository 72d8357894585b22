"""``vqspeech vc-compare``: two vc-eval reports of the same test set, compared utterance by utterance."""

from __future__ import annotations

import json
import sys

from ..errors import UserError
from .runner import float_at_least, parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech vc-compare", "Compare two vc-eval reports of the same test set: the paired difference "
               "of each measure (A - B) with its bootstrap interval over the utterances (and over the runs, "
               "where a side is several runs, e.g. training seeds).",
               epilog="examples: vqspeech vc-compare exp/a/reports/vc_test exp/b/reports/vc_test --json cmp.json; "
                      "two seeds against three: vqspeech vc-compare exp/a/reports/vc_test,exp/a_seed2/reports/vc_test "
                      "exp/b/reports/vc_test,exp/b_seed2/reports/vc_test,exp/b_seed3/reports/vc_test")
    p.add_argument("report_a", metavar="A", help="a vc-eval report.json, or the folder holding it; several runs of "
                   "one system (training seeds) joined by commas: their mean is compared")
    p.add_argument("report_b", metavar="B", help="the other report (or runs), of the same sentences and speaker pairs")
    p.add_argument("--paired-runs", action="store_true",
                   help="run i of A and run i of B share their training draw (the same seed, or both continue "
                        "one model): resample pairs of runs, so what a pair shares cancels (needs as many runs "
                        "a side)")
    p.add_argument("--level", type=float_at_least(0, strictly=True), default=0.95,
                   help="coverage of the intervals (below 1)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the comparison as JSON here")
    args = p.parse_args(argv)

    def work() -> int:
        from ..fileio import atomic_write
        from ..vc_eval.compare import compare_reports, comparison_markdown, read_report, report_paths

        if args.level >= 1:
            raise UserError(f"--level: must be below 1, got {args.level}")
        try:
            paths_a, paths_b = report_paths(args.report_a, "A"), report_paths(args.report_b, "B")
            if args.paired_runs and len(paths_a) != len(paths_b):
                raise UserError(f"--paired-runs: needs as many runs a side, got {len(paths_a)} (A) and "
                                f"{len(paths_b)} (B)")
            a, b = [read_report(p) for p in paths_a], [read_report(p) for p in paths_b]
            cmp = compare_reports(a, b, level=args.level, names=(paths_a, paths_b),
                                  paired_runs=args.paired_runs)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if args.json:
            with atomic_write(args.json) as fh:
                json.dump(cmp, fh, indent=2)
        print(comparison_markdown(cmp, *(", ".join(f"{p} ({r.get('model')})" for p, r in zip(paths, reps))
                                         for paths, reps in ((paths_a, a), (paths_b, b)))), end="")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech vc-compare")


if __name__ == "__main__":
    sys.exit(main())
