"""``vqspeech prior-report``: sample from the prior in every voice and measure what comes out.

    vqspeech prior-report --model M --prior P --data-dir data/test --codes exp/default/codes/test.txt \\
        --output-dir exp/default/prior/report [--per-speaker 3 --seconds 3]
Writes ``wav/<speaker>_<k>.wav``, ``sampled_codes.txt``, ``prior_report.json`` and ``report.md``:
the prior's bits per code on the test codes beside the unigram entropy and the implied bitrates,
the resemblyzer identification of each sample's voice among the test speakers, and the phone
statistics of the sampled codes (``vqspeech.prior.evaluate``).
"""

from __future__ import annotations

import sys

from ..devices import resolve_device
from .common import add_model_args, load_model_arg
from .runner import parser, run_user_command, float_at_least, int_at_least


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech prior-report", __doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--prior", required=True)
    p.add_argument("--data-dir", required=True, help="test data directory (phones.ctm for the phone statistics)")
    p.add_argument("--codes", required=True, help="the test codes (vqspeech encode)")
    p.add_argument("--train-codes", default=None, help="training codes, for the unigram baseline (default: --codes)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--per-speaker", type=int_at_least(1), default=3, help="samples per speaker")
    p.add_argument("--seconds", type=float_at_least(0, strictly=True), default=3.0, help="length of each sample")
    p.add_argument("--temperature", type=float_at_least(0, strictly=True), default=1.0)
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--no-speaker-id", action="store_true", help="skip the resemblyzer identification")
    args = p.parse_args(argv)

    def work() -> int:
        from ..prior.report import run_prior_report, write_prior_report

        device = resolve_device(args.device)
        lm = load_model_arg(args.model, device)
        rep = run_prior_report(lm, args.prior, args.data_dir, args.codes, args.train_codes or args.codes,
                               args.output_dir, args.per_speaker, args.seconds, args.temperature, args.seed,
                               speaker_id=not args.no_speaker_id)
        path = write_prior_report(rep, args.output_dir)
        ident = rep.get("speaker_identification")
        bp = rep["phone_statistics"]["bigram_perplexity"] if rep.get("phone_statistics") else None
        print(f"{path}: prior {rep['prior_bits_per_code']:.3f} bits/code vs unigram "
              f"{rep['unigram_cross_entropy_bits']:.3f}; "
              + (f"samples identified as their speaker {100 * ident['accuracy']:.0f}%; " if ident else "")
              + (f"phone bigram perplexity real {bp['held_out_real']:.1f} / sampled {bp['sampled']:.1f} / "
                 f"unigram {bp['unigram_random']:.1f}" if bp else ""))
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech prior-report")


if __name__ == "__main__":
    sys.exit(main())
