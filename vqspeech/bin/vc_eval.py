"""``vqspeech vc-eval``: convert a parallel test set between all speakers and measure it."""

from __future__ import annotations

import sys

from ..vc_eval.report import run_vc_eval, write_vc_report
from .common import add_intonation_arg
from .runner import parser, run_user_command, int_at_least


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech vc-eval", "Evaluate voice conversion on a parallel test set.")
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True, help="parallel test set (ids <speaker>_<sentence>, with text)")
    p.add_argument("--centroid-data", required=True, help="real utterances for speaker centroids (e.g. data/dev)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--max-sentences", type=int_at_least(1), default=2, help="sentences converted between all speaker pairs")
    p.add_argument("--max-pairs", type=int_at_least(1), default=None, help="seeded sample of (sentence, source, target) jobs")
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--vocoder-model", default=None, metavar="VOCODER_PT",
                   help="spectral models: voice the frames with this WaveNet vocoder instead of Griffin-Lim")
    p.add_argument("--analysis-threads", type=int_at_least(0), default=2,
                   help="threads computing MCD and F0 beside the conversions (0: in turn); the report is the same")
    p.add_argument("--no-progress", action="store_true")
    add_intonation_arg(p)
    args = p.parse_args(argv)

    def work() -> int:
        rep = run_vc_eval(args.model, args.data_dir, args.centroid_data, args.output_dir, args.max_sentences,
                          args.max_pairs, args.seed, progress=not args.no_progress,
                          vocoder_model=args.vocoder_model, analysis_threads=args.analysis_threads,
                          intonation=args.intonation)
        path = write_vc_report(rep, args.output_dir)
        c = rep["overall"].get("converted", {})
        print(f"{path}: converted MCD {c.get('mcd_db', float('nan')):.2f} dB, speaker similarity "
              f"{c.get('speaker_similarity', float('nan')):.3f}, speaker ID {100 * c.get('speaker_id_correct', 0):.0f}%, "
              f"WER {100 * c.get('wer', 0):.1f}%" + (f" (95% interval {100 * ci[0]:.1f}-{100 * ci[1]:.1f}%)"
                                                      if (ci := c.get("wer_ci95")) else ""))
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech vc-eval")


if __name__ == "__main__":
    sys.exit(main())
