"""Generation speed, every method measured side by side in one run.

    python benchmarks/generation.py [--config egs/mini/conf/wavenet.yaml] [--device cpu] [--json out.json]

For each decoder (default: the mini default and the 20-layer 64/128/128 decoder) it prints
samples/s, real-time factor and the ratio to naive generation at batch 1 and 16 for:

- naive full recompute: the decoder is run again over the whole prefix for every sample,
  so sample t costs O(t) and the rate depends on the utterance length.  It is given for a
  1-second utterance; running all 16,000 steps would take minutes, so the run times
  ``--naive-steps`` evenly spaced steps of that utterance (each exactly the step the naive
  generator runs) and divides by their mean.  Step cost is linear in t, so the mean of
  evenly spaced steps is the utterance's mean step.  The same run checks the estimate
  against a short utterance generated in full.
- naive, receptive-field window: recomputes only the samples the prediction can see (timed
  the same way over the same utterance).
- cached reference (torch eager), and every backend of :data:`vqspeech.generation.BACKENDS`
  that runs on the device (CPU: numba, numba-gemm, avx2-cpu on an AVX2 CPU, bf16-cpu on an
  AVX512_BF16 one, amx-cpu on an AMX one, plus the compiled alternatives kept in
  ``generation_backends.py``: TorchScript, torch.compile, fused numpy; CUDA: cuda-graph and
  the fused Triton kernel).  Each is checked against the reference's samples for the same seed.
- folded: one 10-second utterance cut into overlapping segments decoded as a batch, and the
  same utterance end to end (encode + folded decode), as ``convert-voice`` runs it, for each
  backend's default fold (``--fold-sweep``: other segment counts, ``--warmup-sweep``: warm-ups
  shorter than the receptive field, decode only and end to end); with triton and the C kernels
  (bf16-cpu, amx-cpu, avx2-cpu) also batch conversion: many utterances folded into one batch.

Weights are random: speed does not depend on training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generation_backends import BACKENDS  # noqa: E402
from vqspeech.config import config_from_dict, load_config  # noqa: E402
from vqspeech.conversion import convert, decode_codes, decode_many, plan_folds  # noqa: E402
from vqspeech.generation import BACKENDS as SHIPPED, SamplingOptions, generate_classes, pick  # noqa: E402
from vqspeech.generation.naive import naive_step  # noqa: E402
from vqspeech.models import VQVAE  # noqa: E402


# Each device's fastest backends: they also get the batch-conversion row and the warm-up sweep end to end.
FASTEST = ("triton", "bf16-cpu", "amx-cpu", "avx2-cpu")


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        _sync()
        best = min(best, time.perf_counter() - t0)
    return best, out


@torch.no_grad()
def naive_rate(model, batch: int, length: int, steps: int, device, window: int | None = None) -> float:
    """Samples/s of naive generation of a ``length``-sample utterance, from ``steps`` evenly
    spaced steps (see the module docstring); ``window`` as in :func:`naive_step`."""
    hop, q = model.hop, model.decoder.cfg.quantization_channels
    codes = torch.randint(0, model.cfg.quantizer_conf.num_codes, (batch, -(-length // hop)), device=device)
    c, g = model.conditioning(model.quantizer.lookup(codes), torch.zeros(batch, dtype=torch.long, device=device))
    history = torch.randint(0, q, (batch, length), device=device)
    opts = SamplingOptions()
    u = torch.rand(batch, dtype=torch.float64)
    naive_step(model, history[:, :8], c, g, window)  # warm-up
    total = 0.0
    for k in range(steps):
        t = int((k + 0.5) * length / steps)
        dt, _ = timed(lambda: torch.cat([history[:, :t], pick(naive_step(model, history[:, :t], c, g, window), u, opts)[:, None]], 1))
        total += dt
    return batch / (total / steps)


def bench(cfg, device: str, args) -> tuple[list[dict], dict]:
    torch.manual_seed(0)
    model = VQVAE(cfg, num_speakers=4).to(device).eval()
    hop, sr = model.hop, cfg.sample_rate
    cpu = device == "cpu"
    rows = []

    def add(method, batch, rate, **extra):
        rows.append({"method": method, "batch": batch, "samples_per_s": rate, "realtime_x": rate / sr, **extra})

    def codes_for(batch, samples, seed=0):
        g = torch.Generator().manual_seed(seed)
        return (torch.randint(0, cfg.quantizer_conf.num_codes, (batch, samples // hop), generator=g).to(device),
                torch.zeros(batch, dtype=torch.long, device=device))

    opts = SamplingOptions(seed=0)
    naive = {}
    check = {}
    if not args.only_folded:
        # Check the step-sampling estimate once: a short utterance generated in full vs its estimate.
        n_check = args.naive_check_samples
        codes, spk = codes_for(1, n_check)
        t_full, naive_out = timed(lambda: generate_classes(model, codes, spk, n_check, opts, "naive"))
        check = {"samples": n_check, "measured_samples_per_s": n_check / t_full,
                 "estimated_samples_per_s": naive_rate(model, 1, n_check, args.naive_steps, device)}
        ref_short = generate_classes(model, codes, spk, n_check, opts, "reference")
        check["naive_equals_reference"] = bool(torch.equal(naive_out, ref_short))

    device_t = torch.device(device)
    shipped = [b for b in SHIPPED.values() if b.runs_on(device_t) and b.name not in ("reference", "naive", "naive-window")]
    T = args.cached_samples
    for batch in () if args.only_folded else (1, 16):
        naive[batch] = naive_rate(model, batch, int(args.naive_seconds * sr), args.naive_steps, device)
        add(f"naive full recompute ({args.naive_seconds:g} s utterance)", batch, naive[batch])
        add(f"naive, receptive-field window ({args.naive_seconds:g} s utterance)", batch,
            naive_rate(model, batch, int(args.naive_seconds * sr), args.naive_steps, device,
                       model.decoder.receptive_field))

        codes, spk = codes_for(batch, T)
        dt, ref = timed(lambda: generate_classes(model, codes, spk, T, opts, "reference"))
        add("cached reference (torch eager)", batch, batch * T / dt, same_samples=1.0)
        candidates = dict(BACKENDS) if cpu else {}
        for b in shipped:
            candidates[f"{b.name} (shipped)"] = (
                lambda m, c, s, n, u, o, meth=b.name: generate_classes(m, c, s, n, o, meth))
        for name, fn in candidates.items():
            uniforms = opts.uniforms(batch, T)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fn(model, codes, spk, T, uniforms, opts)  # compile / warm up on the same shapes
            _sync()
            warm = time.perf_counter() - t0
            dt, out = timed(lambda: fn(model, codes, spk, T, uniforms, opts), repeat=args.repeat)
            same = (out.cpu() == ref.cpu()).double().mean().item()
            add(name, batch, batch * T / dt, same_samples=same, first_call_s=warm)

    # Folded: one long utterance as a batch of overlapping segments, then end to end, per backend.
    seconds = args.seconds
    codes, _ = codes_for(1, int(seconds * sr), seed=1)
    wav = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * sr))).astype(np.float32)
    for b in shipped:
        method = b.name
        decode_codes(model, codes[0, :64], 0, opts, method)  # warm-up (compiles the kernel)
        dt, _ = timed(lambda: decode_codes(model, codes[0], 0, opts, method, fold=True), repeat=max(2, args.repeat))
        def segments(max_batch, warmup=None):  # how many segments convert-voice cuts the utterance into
            return len(plan_folds(codes.shape[1], hop, model.decoder.receptive_field, max_batch,
                                  min_core_factor=b.min_core_factor, warmup_samples=warmup).starts)

        add(f"{method} folded ({segments(b.default_fold())} segments, the default), one {seconds:g} s utterance (decode only)", 1,
            codes.shape[1] * hop / dt)
        for max_batch in [] if device != "cpu" else [m for m in args.fold_sweep if m != b.default_fold()]:
            dt, _ = timed(lambda: decode_codes(model, codes[0], 0, opts, method, fold=True, max_batch=max_batch),
                          repeat=max(2, args.repeat))
            add(f"{method} folded ({segments(max_batch)} segments: --max-batch {max_batch}), one {seconds:g} s utterance "
                "(decode only)", 1, codes.shape[1] * hop / dt)
        for w in args.warmup_sweep:
            dt, _ = timed(lambda: decode_codes(model, codes[0], 0, opts, method, fold=True, warmup=w),
                          repeat=max(2, args.repeat))
            add(f"{method} folded ({segments(b.default_fold(), w)} segments, --warmup-samples {w}), one {seconds:g} s "
                "utterance (decode only)", 1, codes.shape[1] * hop / dt)
        convert(model, wav[: sr // 2], 0, sr, opts, method, fold=True)  # warm-up
        # shorter warm-ups end to end only for each device's fastest backend (cuda-graph takes seconds)
        for w in [None] + (args.warmup_sweep if method in FASTEST else []):
            _sync()
            t0 = time.perf_counter()
            convert(model, wav, 0, sr, opts, method, fold=True, warmup=w)
            _sync()
            wall = time.perf_counter() - t0
            add(f"{method} end to end, one {seconds:g} s utterance (encode + folded decode"
                + (")" if w is None else f", --warmup-samples {w})"), 1, len(wav) / wall, wall_s=wall)
        # Batch conversion with the fastest backend of each device (cuda-graph would take minutes here).
        if method in FASTEST and args.batch_utterances:
            n, each = args.batch_utterances, args.batch_seconds
            utts = [codes_for(1, int(each * sr), seed=10 + i)[0][0] for i in range(n)]
            per_utt = max(1, b.default_fold() // n)
            decode_many(model, utts[:2], [0, 1], opts, method, max_batch=per_utt)  # warm-up
            dt, _ = timed(lambda: decode_many(model, utts, [i % 4 for i in range(n)], opts, method, max_batch=per_utt))
            add(f"{method} batch conversion, {n} utterances x {each:g} s in one batch (decode only)", 1,
                n * int(each * sr) / dt, wall_s=dt)
    for r in rows:
        r["vs_naive"] = r["samples_per_s"] / naive[r["batch"]] if r["batch"] in naive else float("nan")
    return rows, check


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", action="append", default=None,
                   help="experiment YAML (repeatable); default: the mini default and the 20-layer decoder")
    p.add_argument("--device", default="cpu")
    p.add_argument("--naive-seconds", type=float, default=1.0, help="utterance length for naive full recompute")
    p.add_argument("--naive-steps", type=int, default=12, help="evenly spaced naive steps timed per batch size")
    p.add_argument("--naive-check-samples", type=int, default=1024,
                   help="short utterance generated in full by the naive method to check the estimate")
    p.add_argument("--cached-samples", type=int, default=4096, help="samples per element for the cached methods")
    p.add_argument("--repeat", type=int, default=2, help="best of N timed calls for the cached methods")
    p.add_argument("--seconds", type=float, default=10.0, help="utterance length for the folded figures")
    p.add_argument("--batch-utterances", type=int, default=32,
                   help="utterances in the batch-conversion row (triton and the C kernels; 0: no such row)")
    p.add_argument("--batch-seconds", type=float, default=5.0, help="length of each of those utterances")
    p.add_argument("--only-folded", action="store_true", help="only the folded, end-to-end and batch rows")
    p.add_argument("--fold-sweep", type=lambda v: [int(x) for x in v.split(",") if x], default=[],
                   help="CPU: also decode the folded utterance with these segment limits, e.g. 8,32")
    p.add_argument("--warmup-sweep", type=lambda v: [int(x) for x in v.split(",") if x], default=[],
                   help="also decode the folded utterance with these warm-ups (samples), e.g. 256,512; what "
                        "they change for a trained decoder: vqspeech measure-history")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    configs = args.config or [str(repo / "egs/mini/conf/wavenet.yaml"), "decoder-20-layers"]
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    results = {}
    for name in configs:
        if name == "decoder-20-layers":
            cfg = config_from_dict({"encoder_conf": {"channels": 128}, "quantizer_conf": {"num_codes": 256}})
        else:
            cfg = load_config(name)
        d = cfg.decoder_conf
        t0 = time.perf_counter()
        rows, check = bench(cfg, args.device, args)
        title = (f"{Path(name).name}: decoder {d.layers} layers, {d.residual_channels} residual / "
                 f"{d.gate_channels} gate / {d.skip_channels} skip channels, receptive field "
                 f"{d.receptive_field} samples")
        print(f"\n## {title}\n")
        print("| method | batch | samples/s | x real time | vs naive | same samples as reference | first call |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            same = f"{100 * r['same_samples']:.2f}%" if "same_samples" in r else ""
            first = f"{r['first_call_s']:.1f} s" if "first_call_s" in r else ""
            vs = f"{r['vs_naive']:,.0f}x" if r["vs_naive"] == r["vs_naive"] else ""
            print(f"| {r['method']} | {r['batch']} | {r['samples_per_s']:,.0f} | {r['realtime_x']:.3f} | "
                  f"{vs} | {same} | {first} |")
        for r in rows:
            if "end to end" in r["method"]:
                w = r["method"].split("--warmup-samples ")[1].rstrip(")") if "--warmup-samples" in r["method"] else ""
                print(f"\n{r['method'].split(' end')[0]}: {args.seconds:g} s utterance converted end to end in "
                      f"{r['wall_s']:.3f} s" + (f" (--warmup-samples {w})." if w else "."))
        if check:
            print(f"Naive estimate check ({check['samples']} samples, batch 1): generated in full "
                  f"{check['measured_samples_per_s']:,.1f} samples/s, step-sampling estimate "
                  f"{check['estimated_samples_per_s']:,.1f} samples/s; naive output equals the reference: "
                  f"{check['naive_equals_reference']}.")
        print(f"(section took {time.perf_counter() - t0:.0f} s)")
        results[name] = {"title": title, "rows": rows, "naive_check": check}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    # a user error (a config or data directory that does not read, an absent device): one line, exit 2
    raise SystemExit(run_user_command(main, prog=Path(__file__).name))
