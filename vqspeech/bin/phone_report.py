"""``vqspeech phone-report``: how well the codes match phones, as report.json/.md/.html + TextGrids.

    vqspeech phone-report --model exp/default/checkpoint.pt --codes exp/default/codes/test.txt \\
        --data-dir data/test [--features exp/default/codes/test_features.npz] --output-dir exp/default/reports/phones_test
"""

from __future__ import annotations

import sys
from .runner import parser, run_user_command, float_at_least, int_at_least


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech phone-report", __doc__.split("\n\n")[0])
    p.add_argument("--codes", required=True, help="codes file from 'vqspeech encode'")
    p.add_argument("--data-dir", required=True, help="data dir with phones.ctm and utt2spk")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--model", default=None, help="checkpoint: gives the frame shift and codebook size")
    p.add_argument("--frame-shift-ms", type=float_at_least(0, strictly=True), default=None, help="instead of --model")
    p.add_argument("--num-codes", type=int_at_least(1), default=None, help="instead of --model")
    p.add_argument("--features", default=None, help=".npz of continuous encoder outputs (for ABX)")
    p.add_argument("--tolerance-ms", type=float_at_least(0), default=20.0, help="boundary tolerance")
    p.add_argument("--examples", type=int_at_least(0), default=2, help="example utterances plotted")
    p.add_argument("--sampled-codes", default=None,
                   help="codes sampled from the prior (vqspeech sample --codes-out / prior-report): adds their "
                        "phone statistics")
    args = p.parse_args(argv)

    def work() -> int:
        import numpy as np

        from ..phones.report import compute_phone_report, write_phone_report
        from ..errors import UserError
        from ..codes_file import read_codes

        if args.model and (args.frame_shift_ms is not None or args.num_codes is not None):
            raise UserError("--frame-shift-ms and --num-codes replace --model (which gives both); give one or the other")
        if args.model:
            from ..checkpoint import load_checkpoint

            ck = load_checkpoint(args.model)
            frame_shift = ck["hop"] / ck["sample_rate"]
            num_codes = int(ck["config"]["quantizer_conf"]["num_codes"])
        elif args.frame_shift_ms is not None and args.num_codes is not None:
            frame_shift, num_codes = args.frame_shift_ms / 1000, args.num_codes
        else:
            raise UserError("give --model, or both --frame-shift-ms and --num-codes")
        codes = read_codes(args.codes)
        features = None
        if args.features:
            try:
                with np.load(args.features) as npz:
                    features = {k: npz[k] for k in npz.files}
            except (OSError, ValueError) as exc:
                raise UserError(f"{args.features}: cannot read features ({exc})") from None
        sampled = read_codes(args.sampled_codes) if args.sampled_codes else None
        rep = compute_phone_report(codes, args.data_dir, frame_shift, num_codes, features, args.tolerance_ms / 1000,
                                   sampled_codes=sampled)
        path = write_phone_report(rep, codes, args.data_dir, frame_shift, args.output_dir, args.examples)
        ac = rep["abx_codes"]

        def pct(x):
            return "n/a" if x is None else f"{x:.1f}%"

        print(f"{path}: many-to-one accuracy {100 * rep['many_to_one_accuracy']:.1f}% "
              f"(chance {100 * rep['chance_accuracy']:.1f}%, {rep['num_phones']} phones), PNMI {rep['pnmi']:.3f}, "
              f"ABX codes within/across {pct(ac['within_speaker_error_pct'])} / {pct(ac['across_speaker_error_pct'])}, "
              f"boundary F1 {100 * rep['boundaries']['f1']:.1f}%")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech phone-report")


if __name__ == "__main__":
    sys.exit(main())
