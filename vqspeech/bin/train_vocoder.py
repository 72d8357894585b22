"""``vqspeech train-vocoder`` / ``python -m vqspeech.bin.train_vocoder`` (the form torchrun launches).

    vqspeech train-vocoder --config conf/vocoder.yaml --train-data data/train --dev-data data/dev \\
        --exp-dir exp/vocoder
"""

from __future__ import annotations

from .runner import add_training_options, exit_entry_point, parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech train-vocoder",
               "Train a WaveNet vocoder on the log-mel frames of real audio (for spectral models).")
    p.add_argument("--config", default=None, help="vocoder YAML (conf/vocoder.yaml); default: built-in defaults")
    p.add_argument("--train-data", required=True, help="Kaldi data directory of training audio (any corpus)")
    p.add_argument("--dev-data", default=None, help="data directory to report dev cross-entropy on")
    p.add_argument("--exp-dir", required=True, help="output folder (vocoder.pt, checkpoints/, tensorboard/)")
    p.add_argument("--frames-of", default=None, metavar="MODEL",
                   help="a spectral model (exp/<tag>/checkpoint.pt) the vocoder is for: refuse, before training, "
                        "a config whose frames (sample rate, n_mels, n_fft, frame_hop) are not the model's")
    add_training_options(p)
    args = p.parse_args(argv)

    def work() -> int:
        import os

        from ..wavenet_vocoder.config import load_vocoder_config
        from ..training_log import describe_throughput
        from ..wavenet_vocoder.train import train_vocoder

        cfg = load_vocoder_config(args.config, args.overrides)
        if args.max_steps is not None:
            cfg.train_conf.max_steps = args.max_steps
        if args.frames_of:
            from ..checkpoint import load_model
            from ..errors import UserError
            from ..wavenet_vocoder.model import check_frames

            # load_model: a checkpoint of another kind (a vocoder, a prior) is refused by name
            model_config = load_model(args.frames_of).config
            try:
                check_frames(cfg, model_config, f"--frames-of {args.frames_of}")
            except ValueError as exc:
                raise UserError(str(exc)) from None
        res = train_vocoder(cfg, args.train_data, args.dev_data, args.exp_dir, resume=not args.no_resume,
                            device=args.device, progress=not args.no_progress, until_step=args.until_step)
        if int(os.environ.get("RANK", "0")) == 0 and not res.summary:
            print(f"{args.exp_dir}: already trained to step {res.step}; nothing to do")
        elif int(os.environ.get("RANK", "0")) == 0:
            dev = "" if res.dev_nats is None else f", dev {res.dev_nats:.3f}"
            print(f"step {res.step}: train {res.train_nats:.3f}{dev} nats/sample, "
                  f"{describe_throughput(res.throughput, res.steady_throughput)} -> "
                  f"{os.path.join(args.exp_dir, 'vocoder.pt')}")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech train-vocoder")


if __name__ == "__main__":
    exit_entry_point(main())
