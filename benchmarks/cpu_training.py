"""The CPU training step in float32 and under bf16 autocast (``train_conf.amp: bf16``), side by side.

    python benchmarks/cpu_training.py [--config egs/mini/conf/default.yaml] [--rounds 5] [--steps 4]

Every row starts from the same weights and takes the same batch (random audio, the config's batch
and crop); the rounds alternate between them, so a machine whose speed drifts affects all alike.
A config with parallel supervision (``decoder_conf.parallel_weight``, as ``default.yaml``) also
gets its parallel term, with random partner speakers and frames for every crop. A config whose
step decodes the codes in more than one voice (that term, the critic's conversions, content
consistency) or has a critic gets a third row: bf16 with each decode and critic call apart
(``voices_in_one_batch = False``, the form before they shared batches).
Each round times ``--steps`` whole steps (forward, backward, Adam), as ``vqspeech train`` runs
them (``vqspeech.train._optimise``); the table gives the median round.  bf16 pays only on a CPU
with native bf16 products (AVX512_BF16, AMX): elsewhere ``vqspeech train`` keeps float32, and
this benchmark says so.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqspeech.config import load_config  # noqa: E402
from vqspeech.generation.bf16_cpu_backend import cpu_has_bf16_dot  # noqa: E402
from vqspeech.models import build_model  # noqa: E402
from vqspeech.train import _optimise  # noqa: E402

ROWS = {"float32": None, "bf16 autocast": torch.bfloat16}
APART = "bf16 autocast, each decode and critic call apart"


def has_parallel_term(cfg) -> bool:
    return cfg.decoder == "spectral" and cfg.decoder_conf.parallel_weight > 0


def batches_calls(cfg) -> bool:
    """Whether the step has decodes or critic calls to batch (:meth:`SpectralVQVAE._decode_voices`)."""
    d = cfg.decoder_conf
    return cfg.decoder == "spectral" and (d.parallel_weight > 0 or d.gan_weight > 0 or d.content_consistency_weight > 0)


def random_parallel(cfg, model, batch: int, segment: int, speakers: int, g: torch.Generator) -> tuple:
    """(partner speakers (B,), partner frames (B, bins, n), mask (B, n)) of the shapes
    :meth:`vqspeech.parallel_targets.ParallelTargets.draw` gives, random; a partner is never the crop's speaker."""
    n = segment // cfg.decoder_conf.frame_hop
    partner = (torch.arange(batch) + 1) % speakers
    return partner, torch.randn(batch, model.decoder.bins, n, generator=g), torch.ones(batch, n)


def time_rows(cfg, rounds: int, steps: int, warmup: int = 2, speakers: int = 5) -> dict[str, dict]:
    """{row: {"ms_per_step", "audio_seconds_per_second", "loss"}} over ``rounds`` alternating
    rounds of ``steps`` steps each (median round), after ``warmup`` untimed steps per row."""
    tc = cfg.train_conf
    hop = cfg.sample_multiple
    segment = tc.segment_samples // hop * hop
    g = torch.Generator().manual_seed(1)
    wav = (0.3 * torch.randn(tc.batch_size, segment, generator=g)).clamp(-1, 1)
    spk = torch.arange(tc.batch_size) % speakers
    device = torch.device("cpu")
    rows = dict(ROWS, **({APART: torch.bfloat16} if batches_calls(cfg) else {}))
    state, parallel = {}, None
    for name, dtype in rows.items():
        torch.manual_seed(0)
        model = build_model(cfg, speakers)
        model.voices_in_one_batch = name != APART
        if has_parallel_term(cfg) and parallel is None:
            parallel = random_parallel(cfg, model, tc.batch_size, segment, speakers, g)
        params = [p for p in model.parameters() if p.requires_grad]
        state[name] = (model, params, torch.optim.Adam(params, lr=tc.lr), dtype)
    for model, params, opt, dtype in state.values():
        for _ in range(warmup):
            _optimise(model, opt, None, params, wav, spk, dtype, device, tc.grad_clip, parallel=parallel)
    times: dict[str, list[float]] = {name: [] for name in rows}
    losses: dict[str, float] = {}
    for _ in range(rounds):
        for name, (model, params, opt, dtype) in state.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                out, _ = _optimise(model, opt, None, params, wav, spk, dtype, device, tc.grad_clip,
                                   parallel=parallel)
            times[name].append((time.perf_counter() - t0) / steps)
            losses[name] = out["loss"].item()
    audio = tc.batch_size * segment / cfg.sample_rate
    return {name: {"ms_per_step": 1000 * statistics.median(t), "audio_seconds_per_second": audio / statistics.median(t),
                   "loss": losses[name]} for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "egs/mini/conf/default.yaml"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=4, help="steps per timed round")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    native = cpu_has_bf16_dot()
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, native bf16 (AVX512_BF16): {'yes' if native else 'no: vqspeech train keeps float32 here'}")
    print(f"{args.config}: batch {cfg.train_conf.batch_size} x {cfg.train_conf.segment_samples} samples, "
          f"median of {args.rounds} rounds of {args.steps} steps"
          + (", with the parallel term (random partners)" if has_parallel_term(cfg) else ""))
    rows = time_rows(cfg, args.rounds, args.steps)
    base = rows["float32"]["ms_per_step"]
    print("| row | ms / step | s of audio / s | vs float32 | loss after the timed steps |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['ms_per_step']:.0f} | {r['audio_seconds_per_second']:.1f} | "
              f"{base / r['ms_per_step']:.2f}x | {r['loss']:.5f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"native_bf16": native, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
