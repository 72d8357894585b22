"""``vqspeech train-prior`` / ``python -m vqspeech.bin.train_prior`` (the form torchrun launches).

    vqspeech train-prior --model exp/default/checkpoint.pt --config conf/prior.yaml \\
        --train-codes exp/default/codes/train.txt --train-data data/train \\
        --dev-codes exp/default/codes/dev.txt --dev-data data/dev --exp-dir exp/default/prior
"""

from __future__ import annotations

from .runner import add_training_options, exit_entry_point, parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech train-prior", "Train the autoregressive prior over a model's codes.")
    p.add_argument("--model", required=True, help="the VQ-VAE checkpoint whose codes these are")
    p.add_argument("--config", default=None, help="prior YAML (conf/prior.yaml); default: built-in defaults")
    p.add_argument("--train-codes", required=True, help="codes file from 'vqspeech encode'")
    p.add_argument("--train-data", required=True, help="the data directory of those codes (for utt2spk)")
    p.add_argument("--dev-codes", default=None, help="codes to report cross-entropy on")
    p.add_argument("--dev-data", default=None, help="the data directory of the dev codes")
    p.add_argument("--exp-dir", required=True, help="output folder")
    add_training_options(p)
    args = p.parse_args(argv)

    def work() -> int:
        import json
        import os

        from ..checkpoint import load_model
        from ..codes_file import read_codes
        from ..errors import UserError
        from ..kaldi_data_dir import read_data_dir
        from ..prior.config import load_prior_config
        from ..prior.data import CodeCorpus
        from ..prior.evaluate import unigram_bits
        from ..prior.train import PriorSource, train_prior
        from ..training_log import describe_throughput

        if (args.dev_codes is None) != (args.dev_data is None):
            raise UserError("--dev-codes and --dev-data go together")
        cfg = load_prior_config(args.config, args.overrides)
        if args.max_steps is not None:
            cfg.train_conf.max_steps = args.max_steps
        lm = load_model(args.model)
        K = lm.config.quantizer_conf.num_codes
        source = PriorSource(K, lm.speakers, lm.sample_rate, lm.hop)
        train_codes = read_codes(args.train_codes)
        train = CodeCorpus.from_codes(train_codes, read_data_dir(args.train_data).utt2spk, lm.speakers, K,
                                      args.train_codes)
        dev = dev_codes = None
        if args.dev_codes:
            dev_codes = read_codes(args.dev_codes)
            dev = CodeCorpus.from_codes(dev_codes, read_data_dir(args.dev_data).utt2spk, lm.speakers, K,
                                        args.dev_codes)
        res = train_prior(cfg, source, train, dev, args.exp_dir, resume=not args.no_resume, device=args.device,
                          progress=not args.no_progress, until_step=args.until_step)
        if int(os.environ.get("RANK", "0")) == 0 and not res.summary:
            print(f"{args.exp_dir}: already trained to step {res.step}; nothing to do")
        elif int(os.environ.get("RANK", "0")) == 0:
            rate = lm.sample_rate / lm.hop
            speed = describe_throughput(res.throughput, res.steady_throughput)
            summary = dict(res.summary)
            if dev_codes is not None:
                summary.update(unigram_bits(train_codes, dev_codes, K))
                summary["bitrate_prior_bits_per_s"] = res.dev_bits * rate
                summary["bitrate_unigram_bits_per_s"] = summary["unigram_entropy_bits"] * rate
                from ..fileio import atomic_write

                with atomic_write(os.path.join(args.exp_dir, "prior_summary.json")) as fh:
                    json.dump(summary, fh, indent=2)
                print(f"step {res.step}: dev {res.dev_bits:.3f} bits/code ({summary['bitrate_prior_bits_per_s']:.0f} "
                      f"bit/s); unigram entropy {summary['unigram_entropy_bits']:.3f} bits/code "
                      f"({summary['bitrate_unigram_bits_per_s']:.0f} bit/s), {speed} -> {args.exp_dir}")
            else:
                print(f"step {res.step}: train {res.train_bits:.3f} bits/code, {speed} -> {args.exp_dir}")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech train-prior")


if __name__ == "__main__":
    exit_entry_point(main())
