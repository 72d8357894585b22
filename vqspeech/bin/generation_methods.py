"""``vqspeech generation-methods``: which WaveNet generation methods run on this machine, and the default.

    vqspeech generation-methods
    vqspeech generation-methods --device cuda --json
"""

from __future__ import annotations

import sys

from .runner import parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech generation-methods", "Every WaveNet generation method (convert-voice, decode and sample's "
               "--method) on a device: whether it runs here and why not, which one is the default, whether it "
               "gives the reference's samples for a seed, and its default segments per folded utterance.",
               epilog="examples:\n  vqspeech generation-methods\n  vqspeech generation-methods --device cuda --json")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of lines")
    args = p.parse_args(argv)

    def work() -> int:
        import json

        from ..devices import resolve_device
        from ..generation.registry import format_method_report, method_report

        device = resolve_device(args.device)
        rows = method_report(device)
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print(format_method_report(rows, device), end="")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech generation-methods")


if __name__ == "__main__":
    sys.exit(main())
