"""Training throughput, the variants of one model measured side by side in one run.

    python benchmarks/training.py [--config egs/mini/conf/gpu.yaml] [--device cuda] [--batch 32]
                                  [--steps 30] [--train-data egs/mini/data/train] [--json out.json]

Each row times ``--steps`` optimiser steps (after ``--warmup`` untimed ones) of the same model
on random audio (speed does not depend on the data), with the training loop's own step
(``vqspeech.train._optimise``, autocast as ``vqspeech train`` applies the config on that device):

- ``repeat``: the conditioning repeated to the sample rate in every layer (the previous form);
- ``broadcast``: added at the frame rate through a (B, 2G, F, hop) view (the current form);
- ``channels-last``: (B, T, C) activations, every convolution a matrix product over B*T rows;
- ``+ torch.compile`` (CUDA only): the decoder compiled, gates and adds fused;
- ``conditioning (B, 2G, F)``: the channels-last form reading the frame-rate conditioning
  through a transposed view (the earlier layout; now it is computed (B, F, 2G));
- CUDA only, on top of channels-last + compile (what ``vqspeech train`` runs on CUDA with
  ``train_conf.compile``; skip and residual in one product, ``WaveNet.merge_skip_res``):
  ``skip and residual two products`` (the form before), ``quantizer copy from pageable memory
  (before)`` (that form with the quantizer's per-step index copy as it was before it was queued
  from pinned memory: the copy drained the stream every step), ``fused Adam``
  (``Adam(fused=True)``), ``Triton gate kernels`` (``WaveNet.gate_kernel``: the gate and its
  backward, with the conditioning's per-frame gradient, as the hand-written kernel pair of
  ``vqspeech/models/gate_kernel.py``), ``Triton convolution-gate kernel`` (``gate_kernel =
  "triton-linear"``: the kernel-2 convolution's product and the gate in one kernel,
  ``vqspeech/models/linear_gate.py``, so the (B*T, 2G) product is never stored), ``cuDNN autotuning`` (``torch.backends.cudnn.benchmark``:
  cuDNN times its algorithms for the encoder's strided convolutions), ``encoder compiled`` (the
  encoder compiled on its own, its pads and ReLUs fused), ``loss compiled``
  (``WaveNet.compile_loss``: the cross-entropy compiled on its own, which otherwise runs eagerly
  after the decoder's compiled graph), ``bf16 residual stream`` (``WaveNet.autocast_stream``: the
  layers' inputs and residual sums in bf16 instead of float32), ``every candidate`` (the
  convolution-gate kernel, cuDNN autotuning, the encoder and the loss compiled and the bf16
  residual stream, at once: what the step would be if all of them
  were kept; ``the gate kernel alone`` the same with the gate pair instead; ``batch x2`` the same at
  twice the batch), and, on request, ``coordinate-descent
  tuning`` (Inductor tunes its kernels' block sizes), ``whole model compiled`` (encoder, quantizer
  and loss too), ``max-autotune`` (Inductor's matrix-product templates; slow to compile) and the
  default at two and four times the batch.

``--variants`` picks rows by name (separated by ';'); ``--profile F`` writes the CUDA kernels
that take the channels-last + compile step's time (torch.profiler, 3 steps) to F and prints the top
(and those of the ``every candidate`` row to F's name + ``_every_candidate.txt``);
``--parts`` also times three parts of the first row's step alone (the encoder's forward and
backward; the cross-entropy's forward and backward on logits of the step's shape; the gradient
clipping and Adam's update), so that what is left is the quantizer and the decoder.

It prints seconds of audio per second, steps/s, the ratio to the first row and the achieved
TFLOP/s, counted as 3 x 2 x the decoder's forward multiply-adds per sample (forward + the two
backward products; the encoder and the frame-rate conditioning are left out, as the issue
counted).  With ``--train-data`` it also times the data loader alone (``CropBatches`` with
the config's workers), which must outrun the step.
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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqspeech.config import GATE_KERNELS, load_config  # noqa: E402
from vqspeech.models import build_model, quantizer  # noqa: E402
from vqspeech.train import _optimise  # noqa: E402
from vqspeech.training_runtime import (apply_cuda_options, autocast_dtype, gradient_scaler,  # noqa: E402
                                       training_device)


QUEUED_COPY = quantizer.to_device_async


def decoder_macs_per_sample(d) -> int:
    """Forward multiply-adds of the WaveNet per output sample (sample-rate work only)."""
    R, G, S, Q = d.residual_channels, d.gate_channels, d.skip_channels, d.quantization_channels
    per_layer = 2 * R * 2 * G + G * S + G * R  # kernel-2 dilated conv, skip, residual
    return d.layers * per_layer - G * R + S * S + S * Q  # the last layer has no residual


def encoder_macs_per_sample(e) -> float:
    """Forward multiply-adds of a waveform encoder's strided convolutions and output projection per
    input sample (each layer's work divided by the input samples per output position)."""
    macs, in_ch, hop = 0.0, 1, 1
    for k, s in zip(e.kernel_sizes, e.strides):
        hop *= s
        macs += in_ch * e.channels * k / hop
        in_ch = e.channels
    return macs + e.channels * e.latent_dim / hop


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_variant(cfg, device, batch: int, segment: int, steps: int, warmup: int, upsample: str,
                 compile_: str | None = None, fused_adam: bool = False, profile: str | None = None,
                 cond_layout: str = "frames-last", merge_skip_res: bool = True, pageable_copy: bool = False,
                 tuning: bool = False, gate_kernel: str = "torch", cudnn_benchmark: bool = False,
                 compile_encoder: bool = False, compile_loss: bool = False, bf16_stream: bool = False,
                 parts: bool = False) -> dict:
    """``compile_``: None, ``decoder``, ``model`` or ``decoder-autotune``; ``tuning``: Inductor's
    coordinate-descent tuning of its own kernels' block sizes (for this variant's compile);
    ``cudnn_benchmark``: cuDNN times its algorithms for each new shape (the encoder's strided
    convolutions; training crops have one shape); ``compile_encoder``: the encoder compiled on
    its own (a whole-model compile breaks its graph at the quantizer); ``compile_loss``: the
    cross-entropy compiled on its own (:meth:`WaveNet.compile_loss`); ``bf16_stream``: the
    decoder's residual stream in autocast's dtype (:attr:`WaveNet.autocast_stream`); ``parts``:
    also time the step's parts alone (:func:`time_parts`)."""
    import torch._inductor.config as inductor_config

    inductor_config.coordinate_descent_tuning = tuning
    # Dynamo would reuse the previous row's compiled decoder for this new model of the same
    # structure (seen on the H200: a tuning row "compiled" in 0.4 s); every compiled row compiles.
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = build_model(cfg, num_speakers=4).to(device)
    model.decoder.upsample = upsample
    model.decoder.cond_layout = cond_layout
    model.decoder.merge_skip_res = merge_skip_res
    # the options `vqspeech train` takes from train_conf, applied by the same function
    apply_cuda_options(model, gate_kernel=gate_kernel, compile_decoder=compile_ == "decoder",
                       compile_encoder=compile_encoder, compile_loss=compile_loss,
                       amp_residual_stream=bf16_stream, cudnn_benchmark=cudnn_benchmark)
    if compile_ == "decoder-autotune":
        model.decoder.compile(dynamic=False, mode="max-autotune-no-cudagraphs")
    elif compile_ == "model":
        model.compile(dynamic=False)
    # the quantizer's per-step index copy as it was before it was queued from pinned memory
    quantizer.to_device_async = (lambda t, dev: t.to(dev)) if pageable_copy else QUEUED_COPY
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4, **({"fused": True} if fused_adam else {}))
    amp = autocast_dtype(cfg.train_conf, device)  # as vqspeech train autocasts on this device
    scaler = gradient_scaler(amp)
    g = torch.Generator(device="cpu").manual_seed(1)
    wav = (0.3 * torch.randn(batch, segment, generator=g)).clamp(-1, 1).to(device)
    spk = torch.arange(batch, device=device) % 4
    model.train()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(warmup):
            out, _ = _optimise(model, opt, scaler, params, wav, spk, amp, device, 1.0)
    _sync(device)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        out, _ = _optimise(model, opt, scaler, params, wav, spk, amp, device, 1.0)
    loss = out["loss"].item()  # synchronises
    _sync(device)
    dt = (time.perf_counter() - t0) / steps
    if profile:
        write_profile(lambda: _optimise(model, opt, scaler, params, wav, spk, amp, device, 1.0), profile)
    audio = batch * segment / cfg.sample_rate
    flops = 6 * decoder_macs_per_sample(cfg.decoder_conf) * batch * segment
    result = {"steps_per_s": 1 / dt, "audio_s_per_s": audio / dt, "tflops": flops / dt / 1e12, "warmup_s": first,
              "final_loss": loss, "batch": batch}
    if parts:
        result["parts_ms"] = {"whole step": 1e3 * dt,
                              **time_parts(model, opt, params, wav, amp, device, steps, cfg.decoder_conf)}
    return result


def time_parts(model, opt, params, wav: torch.Tensor, amp, device, steps: int, decoder_conf) -> dict[str, float]:
    """Milliseconds per step of three parts of the training step, each run alone on the same model
    and (B, T) batch ``wav``: ``encoder forward + backward`` (the latents under autocast, and the
    gradient of their mean square back to the encoder's weights), ``cross-entropy forward +
    backward`` (the decoder's loss, as the step runs it, on (B, Q, T) logits laid out as the
    decoder's form leaves them, in the autocast dtype, with their gradient) and ``clip + Adam``
    (the global gradient norm, the clipping and the optimiser's update, on the gradients the step
    left).  What the whole step spends beyond them is the quantizer and the decoder."""
    B, T = wav.shape
    Q = decoder_conf.quantization_channels
    dtype = amp or torch.float32
    g = torch.Generator(device="cpu").manual_seed(2)
    channels_last = model.decoder.upsample == "channels-last"  # (B, T, Q) rows seen as (B, Q, T)
    leaf = torch.randn((B, T, Q) if channels_last else (B, Q, T), generator=g).to(device, dtype).requires_grad_()
    logits = leaf.transpose(1, 2) if channels_last else leaf
    targets = torch.randint(0, Q, (B, T), generator=g).to(device)

    def encoder_pass():
        opt.zero_grad(set_to_none=True)  # as the step does: the backward writes fresh gradients
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            z = model.latents(wav)
        z.float().square().mean().backward()

    def loss_pass():
        leaf.grad = None  # as in the step: the gradient is written, not added to an old one
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = model.decoder.cross_entropy(logits, targets)
        loss.backward()

    def update():
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    out = {}
    parts = (("encoder forward + backward", encoder_pass), ("cross-entropy forward + backward", loss_pass),
             ("clip + Adam", update))
    for name, fn in parts:
        fn()  # warm-up (cuDNN's choice, Adam's state)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        _sync(device)
        out[name] = 1e3 * (time.perf_counter() - t0) / steps
    return out


def saved_activation_bytes(cfg, device, batch: int, segment: int, gate_kernel: str, amp) -> int:
    """Bytes that one training forward of the channels-last model keeps for its backward (each
    storage counted once, parameters left out), with ``gate_kernel``, eagerly under ``amp``
    autocast.  A compiled graph may save somewhat differently (Inductor recomputes cheap
    element-wise work), but not the products' outputs."""
    torch.manual_seed(0)
    model = build_model(cfg, num_speakers=4).to(device)
    model.decoder.upsample = "channels-last"
    model.decoder.gate_kernel = gate_kernel
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            storages[st.data_ptr()] = st.nbytes()
        return t

    wav = (0.3 * torch.randn(batch, segment, generator=torch.Generator().manual_seed(1))).clamp(-1, 1).to(device)
    spk = torch.arange(batch, device=device) % 4
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            model(wav, spk)["loss"]
    return sum(storages.values())


def write_profile(step, path: str, rows: int = 25) -> None:
    """CUDA kernel time of 3 steps, by kernel, to ``path``; prints the first lines."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
    averages = prof.key_averages()
    table = None
    for key in ("self_device_time_total", "self_cuda_time_total"):
        try:
            table = averages.table(sort_by=key, row_limit=rows, max_name_column_width=70)
            break
        except Exception:  # the sort key's name changed across torch versions
            continue
    if table is None:
        print("profile: no kernel table (unknown sort key in this torch)")
        return
    Path(path).write_text(table)
    print("\n".join(table.splitlines()[:rows // 2 + 4]))


def print_parts(variant: str, parts: dict[str, float]) -> None:
    """The step's parts (:func:`time_parts`) with their shares, and what the rest of the step takes."""
    rest = parts["whole step"] - sum(v for k, v in parts.items() if k != "whole step")
    print(f"parts of one step of {variant}, each timed alone:")
    for k, v in {**parts, "the rest (quantizer, decoder)": rest}.items():
        print(f"  {k}: {v:.2f} ms ({100 * v / parts['whole step']:.0f}%)", flush=True)


def print_saved_memory(cfg, device, batch: int, segment: int, json_path: str | None) -> int:
    """``--saved-memory``: :func:`saved_activation_bytes` for each gate kernel, side by side."""
    from vqspeech.generation.triton_backend import available

    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.train_conf.amp)
    rows = {}
    print(f"activations kept for the backward, one forward, eager, autocast {amp}:")
    for kernel in GATE_KERNELS:
        if kernel != "torch" and not available(device):
            print(f"  {kernel}: skipped (needs CUDA or TRITON_INTERPRET=1)")
            continue
        n = saved_activation_bytes(cfg, device, batch, segment, kernel, amp)
        rows[kernel] = n
        print(f"  gate kernel {kernel}: {n / 2 ** 20:,.1f} MiB ({n / (batch * segment):,.0f} bytes per sample, "
              f"{n / rows['torch']:.2f}x torch's)", flush=True)
    if json_path:
        Path(json_path).write_text(json.dumps({"batch": batch, "segment": segment, "saved_bytes": rows}, indent=2))
    return 0


def time_loader(cfg, train_data: str, batch: int, segment: int, batches: int) -> float:
    """Batches per second from the training loader alone."""
    from vqspeech.kaldi_data_dir import read_data_dir
    from vqspeech.training_crops import CropBatches

    dd = read_data_dir(Path(train_data))
    crops = CropBatches(dd, dd.speakers, cfg.sample_rate, batch, segment, 0, 0, 1, cfg.train_conf.preload)
    loader = torch.utils.data.DataLoader(crops, batch_size=None, sampler=range(batches + 2),
                                         num_workers=cfg.train_conf.num_workers)
    it = iter(loader)
    next(it), next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches / (time.perf_counter() - t0)


# Rows run only when asked for by name (--variants): slow to compile, or known not to pay.
SLOW = ("+ whole model compiled", "+ max-autotune", "+ coordinate-descent tuning",
        "channels-last + torch.compile, batch x2", "channels-last + torch.compile, batch x4")


def variant_table(device_type: str) -> dict[str, dict]:
    """The rows this device can run, by name: :func:`time_variant`'s keyword arguments
    (``batch_factor`` multiplies --batch).  The rows that are not the CUDA default say what they change."""
    base = {"upsample": "channels-last", "compile_": "decoder"}
    variants = {"repeat": {"upsample": "repeat"}, "broadcast": {"upsample": "broadcast"},
                "channels-last": {"upsample": "channels-last"}}
    if device_type != "cuda":
        return variants
    variants.update({
        "broadcast + torch.compile": {"upsample": "broadcast", "compile_": "decoder"},
        "channels-last + torch.compile, conditioning (B, 2G, F)": {**base, "cond_layout": "channels-first"},
        "channels-last + torch.compile, skip and residual two products": {**base, "merge_skip_res": False},
        "quantizer copy from pageable memory (before)": {**base, "merge_skip_res": False, "pageable_copy": True},
        "channels-last + torch.compile": base,
        "+ fused Adam": {**base, "fused_adam": True},
        "+ Triton gate kernels": {**base, "gate_kernel": "triton"},
        "+ cuDNN autotuning": {**base, "cudnn_benchmark": True},
        "+ encoder compiled": {**base, "compile_encoder": True},
        "+ loss compiled": {**base, "compile_loss": True},
        "+ Triton convolution-gate kernel": {**base, "gate_kernel": "triton-linear"},
        "+ bf16 residual stream": {**base, "bf16_stream": True},
        "+ every candidate": {**base, "gate_kernel": "triton-linear", "cudnn_benchmark": True,
                              "compile_encoder": True, "compile_loss": True, "bf16_stream": True},
        "+ every candidate, the gate kernel alone": {**base, "gate_kernel": "triton", "cudnn_benchmark": True,
                                                      "compile_encoder": True, "compile_loss": True,
                                                      "bf16_stream": True},
        # the convolution-gate kernel keeps 0.58x the activations, so a larger batch fits
        "+ every candidate, batch x2": {**base, "gate_kernel": "triton-linear", "cudnn_benchmark": True,
                                        "compile_encoder": True, "compile_loss": True, "bf16_stream": True,
                                        "batch_factor": 2},
        "+ coordinate-descent tuning": {**base, "tuning": True},
        "+ whole model compiled": {**base, "compile_": "model"},
        "+ max-autotune": {**base, "compile_": "decoder-autotune"},
        "channels-last + torch.compile, batch x2": {**base, "batch_factor": 2},
        "channels-last + torch.compile, batch x4": {**base, "batch_factor": 4}})
    return variants


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    repo = Path(__file__).resolve().parents[1]
    p.add_argument("--config", default=str(repo / "egs/mini/conf/gpu.yaml"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=None, help="default: the config's batch_size")
    p.add_argument("--segment", type=int, default=None, help="samples per crop; default: the config's")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--train-data", default=None, help="a data directory: also time the data loader")
    p.add_argument("--variants", default=None,
                   help="row names separated by ';' (default: all but the slow ones: whole model, max-autotune, x2)")
    p.add_argument("--profile", default=None, help="CUDA: write the shipped form's kernel-time table here")
    p.add_argument("--parts", action="store_true",
                   help="also time the encoder's forward + backward and the clipped Adam update alone "
                        "(the first row's model)")
    p.add_argument("--saved-memory", action="store_true",
                   help="only print what one forward keeps for the backward with each gate kernel "
                        "(torch, the Triton gate, the Triton convolution-gate kernel), eagerly, under the config's amp")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    if cfg.decoder != "wavenet":
        p.error(f"--config {args.config}: a {cfg.decoder} decoder; this benchmark times WaveNet training "
                f"(e.g. egs/mini/conf/gpu.yaml)")
    device = training_device(args.device)  # a device this machine lacks: one line, exit 2
    batch = args.batch or cfg.train_conf.batch_size
    segment = (args.segment or cfg.train_conf.segment_samples) // cfg.sample_multiple * cfg.sample_multiple
    d = cfg.decoder_conf
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"# {name}, torch {torch.__version__}, {os.cpu_count()} CPU cores ({torch.get_num_threads()} threads); "
          f"{Path(args.config).name}: {d.layers}-layer {d.residual_channels}/{d.gate_channels}/{d.skip_channels} "
          f"decoder, batch {batch} x {segment} samples, amp {cfg.train_conf.amp if device.type == 'cuda' else 'none'}")
    if cfg.encoder_conf.input != "mel" and not cfg.encoder_conf.residual_layers:
        enc, dec = encoder_macs_per_sample(cfg.encoder_conf), decoder_macs_per_sample(d)
        print(f"# multiply-adds per sample: encoder {enc:,.0f}, decoder {dec:,} (the encoder {100 * enc / dec:.1f}% "
              f"of it, left out of the TFLOP/s column)")
    if args.saved_memory:
        return print_saved_memory(cfg, device, batch, segment, args.json)
    variants = variant_table(device.type)
    names = [n.strip() for n in args.variants.split(";")] if args.variants else [n for n in variants if n not in SLOW]
    unknown = [n for n in names if n not in variants]
    if unknown:
        p.error(f"unknown --variants {'; '.join(unknown)}; choose from {'; '.join(variants)}")
    rows = []
    # written again after every row, so a run cut short by a time limit keeps the rows it measured
    result = {"config": args.config, "device": name, "batch": batch, "segment": segment, "rows": rows}
    for label in names:
        kw = dict(variants[label])
        factor = kw.pop("batch_factor", 1)
        prof = args.profile if label == "channels-last + torch.compile" else None
        if args.profile and label == "+ every candidate":  # what would remain with all of them
            prof = str(Path(args.profile).with_name(Path(args.profile).stem + "_every_candidate.txt"))
        try:
            r = time_variant(cfg, device, batch * factor, segment, args.steps, args.warmup, profile=prof,
                             parts=args.parts and not rows, **kw)
        except Exception as e:  # one failed variant (a compiler error) must not lose the others
            print(f"{label}: failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", flush=True)
            continue
        rows.append({"variant": label, **r})
        print(f"{label}: {r['audio_s_per_s']:,.1f} s of audio/s (warm-up {r['warmup_s']:.0f} s)", flush=True)
        if "parts_ms" in r:  # printed at once: a run cut short by a time limit keeps it
            print_parts(label, r["parts_ms"])
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
    if not rows:
        print("no variant ran", file=sys.stderr)
        return 1
    base = rows[0]["audio_s_per_s"]
    print(f"\n| variant | batch | s of audio / s | steps/s | vs {rows[0]['variant']} | TFLOP/s (decoder) | warm-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['batch']} | {r['audio_s_per_s']:,.1f} | {r['steps_per_s']:.2f} | "
              f"{r['audio_s_per_s'] / base:.2f}x | {r['tflops']:.2f} | {r['warmup_s']:.1f} s |")
    if args.train_data:
        rate = time_loader(cfg, args.train_data, batch, segment, max(10, args.steps))
        best = max(r["steps_per_s"] for r in rows if r["batch"] == batch)
        print(f"\ndata loader alone ({cfg.train_conf.num_workers} workers): {rate:.1f} batches/s, "
              f"{rate / best:.1f}x the fastest step")
        result["loader_batches_per_s"] = rate
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    # a user error (a config or data directory that does not read, an absent device): one line, exit 2
    raise SystemExit(run_user_command(main, prog=Path(__file__).name))
