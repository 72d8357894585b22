"""``vqspeech measure-history``: how much sample history a trained WaveNet decoder uses.

    vqspeech measure-history --model exp/wavenet/checkpoint.pt --data-dir data/dev [--write]
Teacher-forces real utterances (``--utterances``, each long enough for ``--offset`` samples, the
receptive field and a window) and prints, per candidate history, the mean KL divergence of the
decoder's predictions from those with its whole receptive field of history (bits per sample over
the receptive field after it) and the likelihood of the true samples; then the shortest history
within ``--tolerance``.  ``--write`` stores it in the checkpoint, and folded generation
(convert-voice, decode, sample, the demo) then warms each segment up by that much instead of the
whole receptive field, unless ``--warmup-samples`` says otherwise (``vqspeech.decoder_history``).
``--model`` may also be a WaveNet vocoder (``vqspeech train-vocoder``), measured on the log-mel
frames of the real audio.
"""

from __future__ import annotations

import sys

from .common import add_model_args, load_model_arg, resolve_device
from .runner import parser, run_user_command, float_at_least, int_at_least


def _load(path: str | None, device):
    """A VQ-VAE (default: the shipped one) or a WaveNet vocoder checkpoint, by its kind."""
    from ..checkpoint import load_checkpoint
    from ..wavenet_vocoder.model import VOCODER_KIND, load_vocoder

    if path is not None and load_checkpoint(path).get("kind") == VOCODER_KIND:
        return load_vocoder(path, device)
    return load_model_arg(path, device)


def main(argv: list[str] | None = None) -> int:
    from ..decoder_history import DEFAULT_TOLERANCE_BITS

    p = parser("vqspeech measure-history", __doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--data-dir", required=True, help="real utterances (a dev set) the model did not train on")
    p.add_argument("--utterances", type=int_at_least(1), default=40, help="at most this many (those long enough)")
    p.add_argument("--offset", type=int_at_least(0), default=8000,
                   help="the evaluated window starts at least this many samples in (past leading silence)")
    p.add_argument("--tolerance", type=float_at_least(0), default=DEFAULT_TOLERANCE_BITS,
                   help="the most KL (bits per sample) the chosen history may add")
    p.add_argument("--write", action="store_true", help="store the chosen history in the --model checkpoint")
    args = p.parse_args(argv)

    def work() -> int:
        from ..checkpoint import store_measured_history
        from ..decoder_history import measure_model_history
        from ..errors import UserError

        if args.model is None and args.write:
            raise UserError("--write needs --model (the shipped model is not rewritten)")
        lm = _load(args.model, resolve_device(args.device))
        try:
            prof = measure_model_history(lm, args.data_dir, args.utterances, args.offset)
        except ValueError as exc:
            raise UserError(f"{args.model or 'the shipped model'}: {exc}") from None
        chosen = prof.choose(args.tolerance)
        rf = prof.receptive_field
        print(f"# {prof.utterances} utterances of {args.data_dir}; receptive field {rf} samples, hop {lm.model.hop}; "
              f"window of {prof.window} samples; whole-history likelihood {prof.reference_bits:.4f} bits/sample")
        print("\n| history (samples) | KL from the whole history, bits/sample | bits/sample of the true samples |")
        print("|---:|---:|---:|")
        for r in prof.rows:
            mark = (" (receptive field)" if r.samples == rf else "") + (" **chosen**" if r.samples == chosen else "")
            print(f"| {r.samples:,}{mark} | {r.kl_bits:.6f} | {r.bits:.4f} |")
        print(f"\nshortest history within {args.tolerance:g} bits/sample: {chosen} samples "
              f"({100 * chosen / rf:.0f}% of the receptive field)")
        if args.write:
            store_measured_history(args.model, prof.to_record(args.tolerance, args.data_dir))
            print(f"{args.model}: folded generation now warms up {chosen} samples by default")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech measure-history")


if __name__ == "__main__":
    sys.exit(main())
