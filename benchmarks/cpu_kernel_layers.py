"""What a layer-step of the bfloat16 CPU kernels costs, by layer count and rows per block.

    python benchmarks/cpu_kernel_layers.py [--layers 5,10,15,20,30] [--rows 4,16] [--samples 4096]

One thread runs one block of ``rows`` batch elements (folded segments) through decoders of
64 residual / 128 gate / 128 skip channels (the 20-layer decoder's width) with 5 to 30 layers,
for every bfloat16 kernel this CPU runs (``bf16-cpu``, ``amx-cpu``, ``avx2-cpu``).  It prints microseconds per
sample step and per layer-step, and the packed weights' size: a layer-step that costs more once
the weights outgrow the core's L2 cache is paying for cache misses, and one whose cost grows
with the rows is paying per row (the products, or the gates and draws), not per weight read.
Weights are random (speed does not depend on training); best of ``--repeat`` timed calls.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqspeech.config import config_from_dict  # noqa: E402
from vqspeech.generation import SamplingOptions  # noqa: E402
from vqspeech.generation.amx_cpu_backend import AmxWaveNet  # noqa: E402
from vqspeech.generation.amx_cpu_backend import available as amx_available  # noqa: E402
from vqspeech.generation.avx2_cpu_backend import Avx2WaveNet  # noqa: E402
from vqspeech.generation.avx2_cpu_backend import available as avx2_available  # noqa: E402
from vqspeech.generation.bf16_cpu_backend import Bf16WaveNet  # noqa: E402
from vqspeech.generation.bf16_cpu_backend import available as bf16_available  # noqa: E402
from vqspeech.models import VQVAE  # noqa: E402


def _ints(text: str) -> list:
    return [int(x) for x in text.split(",") if x]


def layer_step_costs(layers: list, rows: list, samples: int, repeat: int) -> list:
    """[{method, layers, rows, weights_mb, us_per_step, us_per_layer_step, samples_per_s}, ...]"""
    cpu = torch.device("cpu")
    kernels = [(name, cls) for name, cls, ok in (("bf16-cpu", Bf16WaveNet, bf16_available(cpu)),
                                                 ("amx-cpu", AmxWaveNet, amx_available(cpu)),
                                                 ("avx2-cpu", Avx2WaveNet, avx2_available(cpu))) if ok]
    opts = SamplingOptions(seed=1)
    out = []
    for L in layers:
        torch.manual_seed(0)
        cfg = config_from_dict({"encoder_conf": {"channels": 128}, "quantizer_conf": {"num_codes": 256},
                                "decoder_conf": {"layers": L, "dilation_cycle": 10}})
        model = VQVAE(cfg, num_speakers=4).eval()
        for name, cls in kernels:
            g = cls.from_model(model)
            weights_mb = (g.p_cat.nbytes + g.p_out.nbytes + g.p1.nbytes + g.p2.nbytes) / 1e6
            for B in rows:
                codes = torch.randint(0, 256, (B, -(-samples // model.hop)))
                spk = torch.zeros(B, dtype=torch.long)
                u = opts.uniforms(B, samples)
                g.generate(codes[:, :2], spk, 2 * model.hop, u[:, :2 * model.hop].contiguous(), opts, blocks=1)
                best = float("inf")
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    g.generate(codes, spk, samples, u, opts, blocks=1)
                    best = min(best, time.perf_counter() - t0)
                step = best / samples * 1e6
                out.append(dict(method=name, layers=L, rows=B, weights_mb=weights_mb, us_per_step=step,
                                us_per_layer_step=step / L, samples_per_s=B * samples / best))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=_ints, default=[5, 10, 15, 20, 30])
    p.add_argument("--rows", type=_ints, default=[4, 16], help="batch rows per block (one thread)")
    p.add_argument("--samples", type=int, default=4096, help="samples per row")
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, one thread")
    rows = layer_step_costs(args.layers, args.rows, args.samples, args.repeat)
    if not rows:
        print("no bfloat16 CPU kernel runs here (bf16-cpu needs AVX512_BF16, amx-cpu AMX too, avx2-cpu AVX2 and FMA)")
        return
    print("\n| method | layers | packed weights | rows | us per sample step | us per layer-step | samples/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['method']} | {r['layers']} | {r['weights_mb']:.2f} MB | {r['rows']} | {r['us_per_step']:.1f} | "
              f"{r['us_per_layer_step']:.2f} | {r['samples_per_s']:,.0f} |")


if __name__ == "__main__":
    main()
