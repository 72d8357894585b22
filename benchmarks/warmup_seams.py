"""Does a shorter folding warm-up leave a mark where segments meet?  A free-running check.

    python benchmarks/warmup_seams.py --model exp/wavenet/checkpoint.pt --data-dir data/dev \
        [--utterances 40] [--seconds 2.5] [--warmups 0,128,full] [--seeds 0,1,2] [--method M] [--max-batch 8]
        [--kl-only]

``vqspeech measure-history`` measures, under teacher forcing, how much a decoder's predictions
change when it starts W samples before them.  Generation feeds the decoder its own samples
instead, so this script checks the generated audio itself.  For each warm-up it decodes the codes
of real utterances folded (each utterance in its own speaker's voice, several seeds), then scores
every generated waveform with the same model run unfolded over it (teacher forcing on the
generated samples, with the whole utterance as history), and prints the mean negative
log-likelihood of the generated samples, in bits per sample:

- right after each seam (from the cross-fade to one receptive field past the segment's start):
  the samples a short warm-up generated from a partly empty history;
- everywhere else (after the first receptive field of the utterance);
- at the same positions of the utterance generated unfolded (no seams), with the same seeds: how
  much the two regions differ by themselves.

A warm-up too short for the model shows as samples after the seams that the unfolded model finds
less likely than the same positions of unfolded audio.  Those likelihoods compare independently
generated waveforms, so their noise is large; the last columns measure the same thing along each
folded waveform itself (:mod:`vqspeech.fold_divergence`): the KL, in bits per sample over one
receptive field after each seam, from the distribution the folded generator drew each sample from
to the unfolded decoder's on the same samples, whose noise is only the spread over paths.  It is
the free-running counterpart of ``vqspeech measure-history``'s KL (same units, same window), so it
reads against the same tolerance.  ``--kl-only`` skips the unfolded generation and the likelihoods.
Random weights would say nothing here: a trained checkpoint is required.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqspeech.audio import mulaw_encode  # noqa: E402
from vqspeech.checkpoint import load_model  # noqa: E402
from vqspeech.conversion import decode_many, plan_folds, warmup_samples  # noqa: E402
from vqspeech.errors import UserError  # noqa: E402
from vqspeech.fold_divergence import WarmupComparison  # noqa: E402
from vqspeech.generation import SamplingOptions, default_method, get_backend  # noqa: E402
from vqspeech.teacher_forcing import load_crops, teacher_forcing_inputs  # noqa: E402


def main(argv=None) -> int:
    try:
        return run(argv)
    except (UserError, ValueError) as e:
        print(f"warmup_seams.py: error: {e}", file=sys.stderr)
        return 2


@torch.no_grad()
def sample_bits(model, wavs: np.ndarray, codes: torch.Tensor, speakers: torch.Tensor, chunk: int = 4) -> np.ndarray:
    """(B, T) generated waveforms of (B, F) codes in (B,) voices -> (B, T) negative log2-likelihood
    of each sample under the model, run unfolded over the whole waveform (``chunk`` utterances at a
    time: the logits of all of them would not fit)."""
    dec = model.decoder
    target = mulaw_encode(torch.from_numpy(wavs), dec.cfg.quantization_channels).long()
    out = []
    for i in range(0, len(target), chunk):
        c, g = model.code_conditioning(codes[i:i + chunk], speakers[i:i + chunk])
        logits = dec(dec.shift_inputs(target[i:i + chunk]), c, g, model.hop)
        out.append(torch.nn.functional.cross_entropy(logits, target[i:i + chunk], reduction="none").double())
    return (torch.cat(out) / np.log(2)).numpy()


def seam_mask(plan, hop: int, crossfade: int, receptive_field: int, length: int) -> np.ndarray:
    """(length,) True for the samples from each seam's cross-fade to one receptive field past it."""
    mask = np.zeros(length, dtype=bool)
    for core_start in plan.cores[1:-1]:
        a = core_start * hop
        mask[max(0, a - crossfade):a + receptive_field] = True
    return mask


def run(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a trained WaveNet VQ-VAE checkpoint")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--utterances", type=int, default=40)
    p.add_argument("--seconds", type=float, default=2.5, help="the first S seconds of each (longer ones only)")
    p.add_argument("--warmups", type=lambda v: v.split(","), default=["0", "128", "full"],
                   help="warm-ups in samples, or 'full' (the receptive field)")
    p.add_argument("--seeds", type=lambda v: [int(x) for x in v.split(",")], default=[0, 1, 2])
    p.add_argument("--method", default=None, help="generation backend (default: the CPU default)")
    p.add_argument("--max-batch", type=int, default=8, help="segments per utterance")
    p.add_argument("--kl-only", action="store_true", help="only the free-running KL (no unfolded generation)")
    args = p.parse_args(argv)
    lm = load_model(args.model)
    model = lm.model
    if model.decoder_kind != "wavenet":
        raise UserError(f"{args.model}: not a WaveNet-decoder model")
    method = args.method or default_method(torch.device("cpu"))
    backend = get_backend(method)
    hop, rf = model.hop, model.decoder.receptive_field
    warmups = [w if w == "full" else int(w) for w in args.warmups]
    samples = int(args.seconds * lm.sample_rate) // hop * hop
    wav, speakers = load_crops(lm, args.data_dir, args.utterances, samples, pad=False)
    codes = teacher_forcing_inputs(model, wav, speakers)[0]
    F = codes.shape[1]
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch "
          f"{torch.__version__}; model {args.model} (step {lm.step}), receptive field {rf}, hop {hop}; "
          f"{codes.shape[0]} utterances of {args.data_dir} x {samples / lm.sample_rate:.2f} s, seeds {args.seeds}, "
          f"{method}, at most {args.max_batch} segments per utterance")

    cmp = WarmupComparison(model, list(codes), speakers.tolist(), args.seeds, method, args.max_batch)

    def folded_bits(warmup):
        """(seeds, B, T) the unfolded decoder's bits of each seed's folded waveforms."""
        return np.stack([np.stack(r.bits) for r in cmp.runs(warmup)])

    t0 = time.perf_counter()
    if not args.kl_only:
        unfolded = np.stack([sample_bits(model, np.stack(decode_many(
            model, list(codes), speakers.tolist(), SamplingOptions(seed=seed), method, fold=False)), codes, speakers)
            for seed in args.seeds])
        print("\n| warm-up (samples) | segments | samples after the seams | bits/sample there | same positions "
              "unfolded | difference ± standard error | bits/sample elsewhere | elsewhere unfolded | "
              "free-running KL, bits/sample ± standard error |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    else:
        print("\n| warm-up (samples) | segments | free-running KL after the seams, bits/sample ± standard error | "
              "beyond the full warm-up's (paired by utterance and seed) |")
        print("|---:|---:|---:|---:|")
    requested = list(dict.fromkeys(warmup_samples(model.decoder, w) for w in warmups))

    def cell(mean, se):
        return "no seams" if np.isnan(mean) else f"{mean:.6f}" + ("" if np.isnan(se) else f" ± {se:.6f}")

    for n in requested:
        plan = plan_folds(F, hop, rf, args.max_batch, hop, min_core_factor=backend.min_core_factor,
                          warmup_samples=n)
        head = f"| {n:,}{' (receptive field)' if n == rf else ''} | {len(plan.starts)} | "
        if args.kl_only:
            row = cmp.row(n)  # generates the full warm-up too, as the pairs' reference
            print(head + f"{cell(row.kl_bits, row.kl_se)} | {cell(row.extra_bits, row.extra_se) if n != rf else '0'} |")
            continue
        folded = folded_bits(n)
        kl_cell = cell(*cmp.kl(n))
        seams = seam_mask(plan, hop, hop, rf, samples)
        rest = ~seams
        rest[:rf] = False
        at, ref = folded[:, :, seams].mean(), unfolded[:, :, seams].mean()
        # per (seed, utterance) differences: their spread gives the standard error of the mean
        d = (folded[:, :, seams].mean(-1) - unfolded[:, :, seams].mean(-1)).ravel()
        se = d.std(ddof=1) / np.sqrt(d.size)
        print(head + f"{seams.sum() * folded.shape[0] * folded.shape[1]:,} | {at:.4f} | {ref:.4f} | "
              f"{at - ref:+.4f} ± {se:.4f} | "
              f"{folded[:, :, rest].mean():.4f} | {unfolded[:, :, rest].mean():.4f} | {kl_cell} |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    # a user error (a config or data directory that does not read, an absent device): one line, exit 2
    raise SystemExit(run_user_command(main, prog=Path(__file__).name))
