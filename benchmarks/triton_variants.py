"""Layouts and precisions of the fused Triton generation kernel, side by side in one run (CUDA).

    python benchmarks/triton_variants.py [--seconds 10] [--json out.json]

The 20-layer 64/128/128 decoder of ``benchmarks/generation.py`` (random weights) decodes one
``--seconds`` utterance folded into 512 segments with each kernel variant
(:class:`vqspeech.generation.triton_backend.KernelShape` x precision).  A folded decode is one
kernel launch whose sequential steps are the segment's length (its core plus the receptive-field
warm-up), so the table gives the time per sample step, which is what a shorter end to end needs.
Each variant's logits under teacher forcing are compared with the float32 reference (TF32 off).
Then the fastest variant converts the utterance end to end (encode + folded decode) with 512,
1,024 and 2,048 segments, and decodes a batch of utterances.  Prints markdown tables.

``--tiny`` (a 3-layer decoder, 0.25 s) with ``TRITON_INTERPRET=1`` runs the script on the CPU,
to check it before a GPU run; its times mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqspeech.config import config_from_dict  # noqa: E402
from vqspeech.conversion import convert, decode_codes, decode_many, plan_folds  # noqa: E402
from vqspeech.generation import SamplingOptions, generate_classes  # noqa: E402
from vqspeech.generation import triton_backend as tb  # noqa: E402
from vqspeech.models import VQVAE  # noqa: E402

VARIANTS = [  # (label, shape, precision); the first is the layout measured before this benchmark
    ("tf32, 4 warps", tb.KernelShape(num_warps=4), "tf32"),
    ("tf32, 2 warps", tb.KernelShape(num_warps=2), "tf32"),
    ("tf32, 1 warp", tb.KernelShape(num_warps=1), "tf32"),
    ("bf16, 4 warps", tb.KernelShape(num_warps=4), "bf16"),
    ("bf16, 2 warps", tb.KernelShape(num_warps=2), "bf16"),
    ("bf16, 1 warp", tb.KernelShape(num_warps=1), "bf16"),
    ("bf16, 8 warps", tb.KernelShape(num_warps=8), "bf16"),
    ("bf16, 4 warps, block 32", tb.KernelShape(block=32), "bf16"),
]


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        _sync()
        t0 = time.perf_counter()
        fn()
        _sync()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--only", default=None, help="comma-separated variant numbers (1-based) to run")
    p.add_argument("--segments", default="512,1024,2048", help="segment counts of the end-to-end rows")
    p.add_argument("--tiny", action="store_true", help="a 3-layer decoder: check the script on the CPU interpreter")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if torch.cuda.is_available():
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = False
    elif args.tiny and tb.interpreting():
        device = torch.device("cpu")
    else:
        print("triton_variants: needs a CUDA device (or --tiny with TRITON_INTERPRET=1 to check the script)")
        return 2
    cfg = config_from_dict({"encoder_conf": {"channels": 128}, "quantizer_conf": {"num_codes": 256}})
    if args.tiny:
        cfg = config_from_dict({"encoder_conf": {"channels": 16}, "quantizer_conf": {"num_codes": 16},
                                "decoder_conf": {"layers": 3, "dilation_cycle": 3, "residual_channels": 16,
                                                 "gate_channels": 16, "skip_channels": 16}})
        args.seconds = 0.25
    torch.manual_seed(0)
    model = VQVAE(cfg, num_speakers=4).to(device).eval()
    sr, hop = cfg.sample_rate, model.hop
    frames = int(args.seconds * sr) // hop
    g = torch.Generator().manual_seed(1)
    codes = torch.randint(0, cfg.quantizer_conf.num_codes, (frames,), generator=g).to(device)
    plan = plan_folds(frames, hop, model.decoder.receptive_field, 512, min_core_factor=0)
    steps = plan.length * hop
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU, triton interpreter"
    print(f"# {name}, torch {torch.__version__}; "
          f"{cfg.decoder_conf.layers}-layer {cfg.decoder_conf.residual_channels}/{cfg.decoder_conf.gate_channels}/"
          f"{cfg.decoder_conf.skip_channels} decoder; "
          f"one {args.seconds:g} s utterance in {len(plan.starts)} segments of {steps} samples "
          f"({plan.warmup * hop} of them warm-up)")
    # teacher-forced logits: 16 segments x 2,048 samples against the float32 reference
    tl_ = 64 if args.tiny else 2048
    tc = torch.randint(0, cfg.quantizer_conf.num_codes, (16, tl_ // hop), generator=g).to(device)
    ts = (torch.arange(16) % 4).to(device)
    teacher = torch.randint(0, 256, (16, tl_), generator=g).to(device)
    _, ref = generate_classes(model, tc, ts, tl_, SamplingOptions(), "reference", teacher=teacher, return_logits=True)
    scale = (ref.amax() - ref.amin()).item()
    chosen = [VARIANTS[int(i) - 1] for i in args.only.split(",")] if args.only else VARIANTS
    rows = []
    opts = SamplingOptions(seed=0)
    for label, shape, precision in chosen:
        with tb.kernel_settings(shape=shape, precision=precision):
            t0 = time.perf_counter()
            _, lg = tb.generate_triton(model, tc, ts, tl_, SamplingOptions().uniforms(16, tl_), SamplingOptions(),
                                       teacher=teacher, return_logits=True)
            _sync()
            first = time.perf_counter() - t0
            dt = best_of(lambda: decode_codes(model, codes, 0, opts, "triton", max_batch=512), args.repeat)
        err = (lg - ref).abs().max().item()
        rows.append({"variant": label, "block": shape.block, "num_warps": shape.num_warps,
                     "precision": precision, "decode_s": dt,
                     "us_per_step": 1e6 * dt / steps, "max_logit_error": err, "logit_range": scale,
                     "first_call_s": first})
        print(f"  {label}: decode {dt:.3f} s, {1e6 * dt / steps:.1f} us/step, logits within {err:.2e}", flush=True)
    base = rows[0]["decode_s"]
    print(f"\n| variant | decode {args.seconds:g} s (512 segments) | us per sample step | vs first | "
          f"max logit error (range {scale:.1f}) | first call |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['decode_s']:.3f} s | {r['us_per_step']:.1f} | {base / r['decode_s']:.2f}x | "
              f"{r['max_logit_error']:.1e} | {r['first_call_s']:.1f} s |")
    best = min(rows, key=lambda r: r["decode_s"])
    # the fastest variant, and the fastest of those that keep float32-like logits (tf32, ieee) if any ran
    exact = min((r for r in rows if r["precision"] in ("tf32", "ieee")), key=lambda r: r["decode_s"], default=best)
    wav = (0.1 * np.random.default_rng(0).standard_normal(int(args.seconds * sr))).astype(np.float32)
    ends = []
    print(f"\n| variant | segments | end to end {args.seconds:g} s (encode + folded decode) | x real time |")
    print("|---|---:|---:|---:|")
    for r in [exact, best] if exact is not best else [best]:
        shape = tb.KernelShape(block=r["block"], num_warps=r["num_warps"])
        with tb.kernel_settings(shape=shape, precision=r["precision"]):
            for segments in [int(n) for n in args.segments.split(",")]:
                convert(model, wav[: sr // 2], 0, sr, opts, "triton", max_batch=segments)  # warm-up
                dt = best_of(lambda: convert(model, wav, 0, sr, opts, "triton", max_batch=segments), args.repeat)
                ends.append({"variant": r["variant"], "segments": segments, "end_to_end_s": dt})
                print(f"| {r['variant']} | {segments} | {dt:.3f} s | {args.seconds / dt:.1f} |", flush=True)
            n, each = (32, 5.0) if not args.tiny else (2, 0.1)
            utts = [torch.randint(0, cfg.quantizer_conf.num_codes, (int(each * sr) // hop,), generator=g).to(device)
                    for _ in range(n)]
            decode_many(model, utts[:2], [0, 1], opts, "triton", max_batch=16)
            dt = best_of(lambda: decode_many(model, utts, [i % 4 for i in range(n)], opts, "triton", max_batch=16), 1)
            ends.append({"variant": r["variant"], "batch_utterances": n, "seconds_each": each, "decode_s": dt})
            print(f"| {r['variant']}: batch conversion {n} x {each:g} s (decode, 16 segments each) | {n * 16} | "
                  f"{dt:.3f} s | {n * each / dt:.0f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "end_to_end": ends}, indent=2))
    return 0


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    # a user error (a config or data directory that does not read, an absent device): one line, exit 2
    raise SystemExit(run_user_command(main, prog=Path(__file__).name))
