"""``vqspeech train`` / ``python -m vqspeech.bin.train`` (the form torchrun launches)."""

from __future__ import annotations

from .runner import add_training_options, exit_entry_point, float_at_least, parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech train", "Train a VQ-VAE on a Kaldi data directory.")
    p.add_argument("--config", required=True, help="YAML experiment config (conf/*.yaml)")
    p.add_argument("--train-data", required=True, help="Kaldi data dir for training")
    p.add_argument("--dev-data", default=None, help="Kaldi data dir for validation")
    p.add_argument("--exp-dir", default=None, help="output dir (default exp/<config basename>)")
    add_training_options(p, "stop (with a checkpoint) at this step; the schedule still follows max_steps")
    p.add_argument("--init-from", default=None, metavar="CKPT",
                   help="start from this VQ-VAE's weights (fine-tuning; e.g. vqspeech/pretrained/mini.pt): speakers "
                        "matched by name, optimizer and schedule fresh; sets train_conf.init_from; ignored on resume")
    p.add_argument("--dist-timeout", type=float_at_least(0, strictly=True), default=600.0, help="seconds before a silent peer is an error")
    args = p.parse_args(argv)
    from pathlib import Path

    from ..config import load_config
    from ..train import train
    from ..training_log import describe_throughput

    def work() -> int:
        cfg = load_config(args.config, args.overrides)
        if args.max_steps is not None:
            cfg.train_conf.max_steps = args.max_steps
        if args.init_from is not None:
            cfg.train_conf.init_from = args.init_from
        exp = args.exp_dir or str(Path("exp") / Path(args.config).stem)
        res = train(cfg, args.train_data, args.dev_data, exp, resume=not args.no_resume, device=args.device,
                    progress=not args.no_progress, dist_timeout_s=args.dist_timeout,
                    until_step=args.until_step)
        import os

        if int(os.environ.get("RANK", "0")) == 0 and not res.final:
            print(f"{exp}: already trained to step {res.step}; nothing to do")
        elif int(os.environ.get("RANK", "0")) == 0:
            f = res.final
            unit = "mean |log-magnitude error|" if cfg.decoder == "spectral" else "nats/sample"
            print(f"step {res.step}: recon {f.get('loss/recon', float('nan')):.4f} {unit}, "
                  f"perplexity {f.get('vq/perplexity', float('nan')):.1f}, codes used "
                  f"{f.get('vq/codes_used', float('nan')):.0f}, {describe_throughput(res.throughput, res.steady_throughput)} "
                  f"-> {exp}")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech train")


if __name__ == "__main__":
    exit_entry_point(main())
