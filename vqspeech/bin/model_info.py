"""``vqspeech model-info``: what a checkpoint is and holds (a VQ-VAE model, a WaveNet vocoder or a prior).

    vqspeech model-info                                   the shipped model
    vqspeech model-info --model exp/default/checkpoint.pt
    vqspeech model-info --model exp/vocoder/vocoder.pt --json
"""

from __future__ import annotations

import sys

from .runner import parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech model-info", "What a checkpoint is and holds: its kind, codebook and code rate (with the "
               "bitrate's ceiling), encoder and decoder, speakers, parameter counts, training budget, and the "
               "training summary beside it when it is of the same step.",
               epilog="examples:\n  vqspeech model-info\n  vqspeech model-info --model exp/default/checkpoint.pt "
                      "--json")
    p.add_argument("--model", default=None,
                   help="a VQ-VAE checkpoint (exp/<tag>/checkpoint.pt), a WaveNet vocoder (vocoder.pt) or a prior "
                        "(prior.pt); default: the shipped model")
    p.add_argument("--json", action="store_true", help="print the description as JSON instead of lines")
    args = p.parse_args(argv)

    def work() -> int:
        import json

        from ..checkpoint_info import describe_checkpoint, format_description
        from ..pretrained import model_path_or_shipped

        info = describe_checkpoint(model_path_or_shipped(args.model))
        print(json.dumps(info, indent=2) if args.json else format_description(info), end="\n" if args.json else "")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech model-info")


if __name__ == "__main__":
    sys.exit(main())
