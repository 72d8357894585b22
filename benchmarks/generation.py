"""Generation speed: naive vs cached reference vs fast (numba) vs folded fast, measured side by side.

    python benchmarks/generation.py [--config egs/mini/conf/default.yaml] [--device cpu] [--json out.json]

Prints samples/s and real-time factor (audio seconds per wall second) at batch 1 and 16,
with ratios to the naive method, plus a 10-second utterance converted end to end (encode +
folded decode).  Weights are random: speed does not depend on training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqspeech.config import config_from_dict, load_config  # noqa: E402
from vqspeech.conversion import convert  # noqa: E402
from vqspeech.generation import SamplingOptions, generate_classes  # noqa: E402
from vqspeech.models import VQVAE  # noqa: E402


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def bench(cfg, device: str, naive_samples: int, ref_samples: int, fast_samples: int, seconds: float):
    torch.manual_seed(0)
    model = VQVAE(cfg, num_speakers=4).to(device).eval()
    hop, sr = model.hop, cfg.sample_rate
    opts = SamplingOptions(seed=0)
    rows = []

    def run(method, batch, samples, repeat=1):
        frames = -(-samples // hop)
        codes = torch.randint(0, cfg.quantizer_conf.num_codes, (batch, frames), device=device)
        spk = torch.zeros(batch, dtype=torch.long, device=device)
        if method == "fast":  # compile / warm up outside the timing
            generate_classes(model, codes[:, :2], spk, opts=opts, method=method)
        t = timed(lambda: generate_classes(model, codes, spk, frames * hop, opts, method), repeat)
        rate = batch * frames * hop / t
        rows.append({"method": method, "batch": batch, "samples_per_s": rate, "realtime_x": rate / sr})

    cpu = device == "cpu"
    for batch in (1, 16):
        run("naive", batch, naive_samples)
        run("reference", batch, ref_samples)
        if cpu:
            run("fast", batch, fast_samples, repeat=2)
        else:
            run("cuda-graph", batch, fast_samples, repeat=2)
    naive = {r["batch"]: r["samples_per_s"] for r in rows if r["method"] == "naive"}
    for r in rows:
        r["vs_naive"] = r["samples_per_s"] / naive[r["batch"]]

    # End to end: a 10 s utterance, encode + folded decode (batch of segments), as convert-voice does.
    wav = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * sr))).astype(np.float32)
    method = "fast" if cpu else "cuda-graph"
    convert(model, wav[: sr // 2], 0, sr, opts, method, fold=True)  # warm-up
    res = convert(model, wav, 0, sr, opts, method, fold=True, max_batch=16)
    e2e = {"audio_seconds": seconds, "wall_seconds": res.seconds, "realtime_x": res.real_time_factor,
           "samples_per_s": len(wav) / res.seconds}
    naive1 = naive[1]
    e2e["vs_naive"] = e2e["samples_per_s"] / naive1
    return model, rows, e2e


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", action="append", default=None,
                   help="experiment YAML (repeatable); default: the mini default and the 20-layer default decoder")
    p.add_argument("--device", default="cpu")
    p.add_argument("--naive-samples", type=int, default=256)
    p.add_argument("--reference-samples", type=int, default=2048)
    p.add_argument("--fast-samples", type=int, default=32000)
    p.add_argument("--seconds", type=float, default=10.0, help="utterance length for the end-to-end figure")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    configs = args.config or [str(repo / "egs/mini/conf/default.yaml"), "decoder-default"]
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    results = {}
    for name in configs:
        if name == "decoder-default":
            cfg = config_from_dict({"encoder_conf": {"channels": 128}, "quantizer_conf": {"num_codes": 256}})
        else:
            cfg = load_config(name)
        d = cfg.decoder_conf
        model, rows, e2e = bench(cfg, args.device, args.naive_samples, args.reference_samples,
                                 args.fast_samples, args.seconds)
        title = (f"{Path(name).name}: decoder {d.layers} layers, {d.residual_channels} residual / "
                 f"{d.gate_channels} gate / {d.skip_channels} skip channels, receptive field "
                 f"{d.receptive_field} samples")
        print(f"\n## {title}\n")
        print("| method | batch | samples/s | x real time | vs naive |")
        print("|---|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['method']} | {r['batch']} | {r['samples_per_s']:,.0f} | {r['realtime_x']:.3f} | "
                  f"{r['vs_naive']:,.0f}x |")
        print(f"| end to end, {e2e['audio_seconds']:.0f} s utterance (encode + folded decode) | 1 | "
              f"{e2e['samples_per_s']:,.0f} | {e2e['realtime_x']:.2f} | {e2e['vs_naive']:,.0f}x |")
        print(f"\n{e2e['audio_seconds']:.0f} s utterance converted in {e2e['wall_seconds']:.2f} s")
        results[name] = {"title": title, "rows": rows, "end_to_end": e2e}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
