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

``--free-running`` then checks the choice on generated audio (``vqspeech.fold_divergence``): it folds
the codes of the first ``--seconds`` of each utterance into ``--segments`` segments, generates them
with the chosen warm-up and with the whole receptive field (``--seeds``), and measures the KL from
the distribution each sample after a seam was drawn from to the unfolded decoder's.  If the chosen
warm-up adds more than ``--tolerance`` bits/sample beyond the full warm-up's, the next longer
candidate is tried, and so on; ``--write`` stores the one that passes.  It generates audio, so it
takes minutes (5.2 min for 40 utterances, one seed and two warm-ups of the 20-layer decoder on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import sys

from ..devices import resolve_device
from .common import add_model_args, load_model_arg
from .runner import parser, run_user_command, float_at_least, int_at_least


def _load(path: str | None, device):
    """A VQ-VAE (default: the shipped one) or a WaveNet vocoder checkpoint, by its kind."""
    from ..checkpoint import load_checkpoint
    from ..wavenet_vocoder.model import VOCODER_KIND, load_vocoder

    if path is not None and load_checkpoint(path).get("kind") == VOCODER_KIND:
        return load_vocoder(path, device)
    return load_model_arg(path, device)


def _seeds(value: str) -> list[int]:
    try:
        seeds = [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None
    if any(v < 0 for v in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be >= 0, got {value!r}")
    return seeds


def _free_running(lm, args, prof, chosen: int) -> tuple[int, dict]:
    """Check ``chosen`` (and longer candidates while it fails) on generated audio; print the table
    and return the confirmed history and the record's ``free_running`` entry."""
    import torch

    from ..decoder_history import candidate_histories
    from ..errors import UserError
    from ..fold_divergence import WarmupComparison
    from ..generation import default_method
    from ..teacher_forcing import load_crops

    model = lm.model
    device = next(model.parameters()).device
    method = args.method or default_method(device)
    samples = int(args.seconds * lm.sample_rate) // model.hop * model.hop
    try:
        wav, speakers = load_crops(lm, args.data_dir, args.utterances, samples, pad=False)
    except ValueError as exc:
        raise UserError(f"--seconds {args.seconds:g}: {exc}") from None
    with torch.no_grad():
        codes = model.encode(wav.to(device))["codes"].cpu()
    cmp = WarmupComparison(model, list(codes), speakers.tolist(), args.seeds, method, args.segments)
    rf = prof.receptive_field
    confirmed, rows = cmp.confirm([c for c in candidate_histories(rf, model.hop) if c >= chosen], args.tolerance)
    print(f"\n# free-running: {len(codes)} utterances x {samples / lm.sample_rate:.2f} s, {args.segments} "
          f"segments each, seeds {','.join(map(str, args.seeds))}, {method}")
    print("\n| warm-up (samples) | KL after the seams, bits/sample | beyond the full warm-up's, paired |")
    print("|---:|---:|---:|")
    for r in rows:
        mark = (" (receptive field)" if r.warmup == rf else "") + (" **confirmed**" if r.warmup == confirmed else "")
        extra = "0" if r.warmup == rf else f"{r.extra_bits:+.6f} ± {r.extra_se:.6f}"
        print(f"| {r.warmup:,}{mark} | {r.kl_bits:.6f} ± {r.kl_se:.6f} | {extra} |")
    verdict = "confirms it" if confirmed == chosen else f"needs {confirmed} samples"
    print(f"\nfree-running, the teacher-forced choice of {chosen} samples {verdict} "
          f"(at most {args.tolerance:g} bits/sample beyond the full warm-up's)")
    entry = {"samples": confirmed, "teacher_forced_samples": chosen, "seeds": list(args.seeds),
             "seconds": float(args.seconds), "segments": args.segments, "utterances": len(codes), "method": method,
             "rows": [[r.warmup, r.kl_bits, r.kl_se, r.extra_bits, r.extra_se, r.pairs] for r in rows]}
    return confirmed, entry


def main(argv: list[str] | None = None) -> int:
    from ..decoder_history import DEFAULT_TOLERANCE_BITS
    from ..generation import METHODS

    p = parser("vqspeech measure-history", __doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--data-dir", required=True, help="real utterances (a dev set) the model did not train on")
    p.add_argument("--utterances", type=int_at_least(1), default=40, help="at most this many (those long enough)")
    p.add_argument("--offset", type=int_at_least(0), default=8000,
                   help="the evaluated window starts at least this many samples in (past leading silence)")
    p.add_argument("--tolerance", type=float_at_least(0), default=DEFAULT_TOLERANCE_BITS,
                   help="the most KL (bits per sample) the chosen history may add")
    p.add_argument("--write", action="store_true", help="store the chosen history in the --model checkpoint")
    fr = p.add_argument_group("free-running check (--free-running)")
    fr.add_argument("--free-running", action="store_true",
                    help="confirm the choice on folded generation's own output, stepping up to longer histories "
                         "until one is within --tolerance of the full warm-up (VQ-VAE models; generates audio)")
    # Defaults are applied after parsing (argparse.SUPPRESS leaves an option out of args unless given),
    # so that these options given without --free-running are an error rather than silently ignored.
    free_running_defaults = {"seeds": [0], "seconds": 2.5, "segments": 8, "method": None}
    fr.add_argument("--seeds", type=_seeds, default=argparse.SUPPRESS, help="sampling seeds, comma-separated "
                    f"(default: {','.join(map(str, free_running_defaults['seeds']))})")
    fr.add_argument("--seconds", type=float_at_least(0, strictly=True), default=argparse.SUPPRESS,
                    help="the first S seconds of each utterance (longer ones only) are generated "
                         f"(default: {free_running_defaults['seconds']:g})")
    fr.add_argument("--segments", type=int_at_least(2), default=argparse.SUPPRESS,
                    help=f"segments each utterance is folded into (default: {free_running_defaults['segments']})")
    fr.add_argument("--method", choices=list(METHODS), default=argparse.SUPPRESS,
                    help="generation backend (default: the device's, as convert-voice picks it)")
    args = p.parse_args(argv)
    stray = [f"--{k}" for k in free_running_defaults if hasattr(args, k)]
    for key, default in free_running_defaults.items():
        if not hasattr(args, key):
            setattr(args, key, default)

    def work() -> int:
        from ..checkpoint import store_measured_history
        from ..decoder_history import measure_model_history
        from ..errors import UserError

        if args.model is None and args.write:
            raise UserError("--write needs --model (the shipped model is not rewritten)")
        if stray and not args.free_running:
            raise UserError(f"{' and '.join(stray)} only apply with --free-running")
        lm = _load(args.model, resolve_device(args.device))
        if args.free_running and not hasattr(lm.model, "encode"):
            raise UserError(f"{args.model}: --free-running needs a VQ-VAE (a WaveNet vocoder's folded generation "
                            "is not measured free-running)")
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
        record = prof.to_record(args.tolerance, args.data_dir)
        if args.free_running:
            chosen, record["free_running"] = _free_running(lm, args, prof, chosen)
            record["samples"] = chosen
        if args.write:
            store_measured_history(args.model, record)
            print(f"{args.model}: folded generation now warms up {chosen} samples by default")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech measure-history")


if __name__ == "__main__":
    sys.exit(main())
