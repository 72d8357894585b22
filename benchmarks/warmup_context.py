"""How much sample history a trained WaveNet decoder uses: the price of a shorter folding warm-up.

    python benchmarks/warmup_context.py --model exp/wavenet/checkpoint.pt --data-dir data/dev \
        [--utterances 40] [--contexts 0,64,128,256,512,1024,2048] [--window 2048] [--offset 8000]

Folded generation (``vqspeech.conversion.plan_folds``) starts every segment ``--warmup-samples``
before its own samples (default: the receptive field) from the state generation starts from
(empty layer queues, the silence class as the first input), and drops the warm-up. With a
warm-up shorter than the receptive field, the segment's first own samples see part of that
initial state instead of their generated past.  This script measures the effect on real audio
under teacher forcing: for each utterance it evaluates the same ``--window`` samples with the
decoder started ``W`` samples before them, for each ``W`` of ``--contexts``, and prints the
negative log-likelihood of the true samples (bits/sample).  Where the figure for ``W`` equals the
one for the full receptive field, a warm-up of ``W`` samples changes none of the decoder's
predictions after it: the speed-up of the shorter warm-up is free for that model.  The run
shows it for one model; a decoder trained longer may use more history, so measure yours.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_audio import bits_per_sample, load_crops, teacher_forcing_inputs  # noqa: E402
from vqspeech.checkpoint import load_model  # noqa: E402
from vqspeech.errors import UserError  # noqa: E402


def main(argv=None) -> int:
    try:
        return run(argv)
    except (UserError, ValueError) as e:
        print(f"warmup_context.py: error: {e}", file=sys.stderr)
        return 2


def run(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a trained WaveNet VQ-VAE checkpoint")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--utterances", type=int, default=40, help="at most this many (those long enough)")
    p.add_argument("--contexts", type=lambda v: [int(x) for x in v.split(",")], default=[0, 64, 128, 256, 512, 1024, 2048])
    p.add_argument("--window", type=int, default=2048, help="evaluated samples per utterance")
    p.add_argument("--offset", type=int, default=8000,
                   help="the window starts at least this many samples into the utterance (past leading silence)")
    args = p.parse_args(argv)
    lm = load_model(args.model)
    model = lm.model
    if model.decoder_kind != "wavenet":
        print(f"{args.model}: not a WaveNet-decoder model", file=sys.stderr)
        return 2
    hop, rf = model.hop, model.decoder.receptive_field
    contexts = sorted(set(args.contexts) | {rf})
    # the evaluated window starts on a frame boundary after the longest context and the offset
    start = -(-max(max(contexts), args.offset) // hop) * hop
    need = start + args.window
    wav, speakers = load_crops(lm, args.data_dir, args.utterances, need, pad=False)
    codes, target, c, g = teacher_forcing_inputs(model, wav, speakers)
    with torch.no_grad():
        print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch "
              f"{torch.__version__}; model {args.model} (step {lm.step}), receptive field {rf} samples, hop {hop}; "
              f"{wav.shape[0]} utterances of {args.data_dir}, samples {start}..{need - 1} of each evaluated")
        print("\n| history before the window (samples) | bits/sample | vs the receptive field |")
        print("|---:|---:|---:|")
        rows = {}
        for w in contexts:
            first = start - -(-w // hop) * hop  # whole frames of history, at least w samples
            tgt = target[:, first:need]
            logits = model.decoder(model.decoder.shift_inputs(tgt), c[:, :, first // hop:need // hop], g, hop)
            skip = start - first
            rows[w] = bits_per_sample(logits[:, :, skip:], tgt[:, skip:])
        for w in contexts:
            d = rows[w] - rows[rf]
            print(f"| {w:,}{' (receptive field)' if w == rf else ''} | {rows[w]:.4f} | {d:+.4f} ({100 * d / rows[rf]:+.2f}%) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
