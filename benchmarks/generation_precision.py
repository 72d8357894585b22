"""What reduced-precision generation costs a trained decoder: teacher-forced likelihood of real audio.

    python benchmarks/generation_precision.py --model exp/wavenet/checkpoint.pt --data-dir data/dev \
        [--utterances 4] [--seconds 2] [--device cpu]

For the first N utterances of a data directory (their first S seconds), each as its own speaker,
the script encodes the audio to codes, then feeds the true mu-law samples back (teacher forcing)
through every generation backend that supports it on the device and measures, side by side:

- the negative log-likelihood of the true next sample in bits per sample (what the decoder was
  trained to minimise: a precision loss that mattered would raise it),
- the largest and mean absolute difference from the float32 logits, relative to their range,
- how often the most likely class is the same as float32's.

The float32 row is the training model's parallel forward (equal to the cached reference within
1e-4, ``tests/test_wavenet.py``).  Random weights would say nothing here: a trained checkpoint is
required.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqspeech.teacher_forcing import bits_per_sample, load_crops, teacher_forcing_inputs  # noqa: E402
from vqspeech.checkpoint import load_model  # noqa: E402
from vqspeech.errors import UserError  # noqa: E402
from vqspeech.generation import BACKENDS, SamplingOptions, generate_classes  # noqa: E402


def main(argv=None) -> int:
    try:
        return run(argv)
    except (UserError, ValueError) as e:
        print(f"generation_precision.py: error: {e}", file=sys.stderr)
        return 2


def run(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a trained WaveNet VQ-VAE checkpoint")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--utterances", type=int, default=4)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    lm = load_model(args.model, device)
    model = lm.model
    if model.decoder_kind != "wavenet":
        print(f"{args.model}: not a WaveNet-decoder model", file=sys.stderr)
        return 2
    hop = model.hop
    frames = int(args.seconds * lm.sample_rate) // hop
    T = frames * hop
    wav, speaker = load_crops(lm, args.data_dir, args.utterances, T, pad=True)
    wav, speaker = wav.to(device), speaker.to(device)
    codes, target, c, g = teacher_forcing_inputs(model, wav, speaker, frames)
    with torch.no_grad():
        ref = model.decoder(model.decoder.shift_inputs(target), c, g, hop).float()
    span = (ref.amax(1) - ref.amin(1)).mean().item()
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
          f"device {device}; model {args.model} (step {lm.step}); {wav.shape[0]} utterances x {T / lm.sample_rate:g} s "
          f"of {args.data_dir}; mean logit range {span:.2f}")
    print("\n| logits | bits/sample | vs float32 | max abs diff / range | mean abs diff / range | same argmax | time |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = bits_per_sample(ref, target)
    print(f"| float32 (training forward) | {base:.4f} | | | | | |")
    for b in BACKENDS.values():
        if not b.teacher_forcing or not b.runs_on(device) or b.name == "reference":
            continue
        t0 = time.perf_counter()
        _, logits = generate_classes(model, codes, speaker, T, SamplingOptions(), b.name, teacher=target,
                                     return_logits=True)
        dt = time.perf_counter() - t0
        logits = logits.float()
        diff = (logits - ref).abs()
        nll = bits_per_sample(logits, target)
        same = (logits.argmax(1) == ref.argmax(1)).double().mean().item()
        print(f"| {b.name} | {nll:.4f} | {nll - base:+.4f} ({100 * (nll - base) / base:+.2f}%) | "
              f"{diff.max().item() / span:.2e} | {diff.mean().item() / span:.2e} | {100 * same:.2f}% | {dt:.1f} s |")
    return 0


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    # a user error (a config or data directory that does not read, an absent device): one line, exit 2
    raise SystemExit(run_user_command(main, prog=Path(__file__).name))
