"""``vqspeech vc-compare``: two vc-eval reports of the same test set, compared utterance by utterance."""

from __future__ import annotations

import json
import sys

from ..errors import UserError
from .runner import float_at_least, parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech vc-compare", "Compare two vc-eval reports of the same test set: the paired difference "
               "of each measure (A - B) with its bootstrap interval over the utterances.",
               epilog="example: vqspeech vc-compare exp/a/reports/vc_test exp/b/reports/vc_test --json cmp.json")
    p.add_argument("report_a", metavar="A", help="a vc-eval report.json, or the folder holding it")
    p.add_argument("report_b", metavar="B", help="the other report, of the same sentences and speaker pairs")
    p.add_argument("--level", type=float_at_least(0, strictly=True), default=0.95,
                   help="coverage of the intervals (below 1)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the comparison as JSON here")
    args = p.parse_args(argv)

    def work() -> int:
        from ..fileio import atomic_write
        from ..vc_eval.compare import compare_reports, comparison_markdown, read_report

        if args.level >= 1:
            raise UserError(f"--level: must be below 1, got {args.level}")
        try:
            a, b = read_report(args.report_a), read_report(args.report_b)
            cmp = compare_reports(a, b, level=args.level)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if args.json:
            with atomic_write(args.json) as fh:
                json.dump(cmp, fh, indent=2)
        print(comparison_markdown(cmp, f"{args.report_a} ({a.get('model')})", f"{args.report_b} ({b.get('model')})"),
              end="")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech vc-compare")


if __name__ == "__main__":
    sys.exit(main())
