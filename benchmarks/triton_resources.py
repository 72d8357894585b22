"""What the project's Triton kernels cost a GPU in registers, compiled here without one.

    python benchmarks/triton_resources.py [--arch 90] [--json out.json]

Triton's NVIDIA backend compiles a kernel down to a cubin on any machine (no GPU is needed until
the launch), and ``cuobjdump -res-usage`` (shipped with triton) reads the registers a thread uses
and the stack it spills to.  For each kernel at the gpu.yaml decoder's sizes (64/128/128, hop 64,
bf16), with the tiles and warps its launcher picks, this prints registers, spilled stack bytes,
shared memory and how many warps an SM (65,536 registers) can keep resident: a compile error or
a spill in the training kernels would otherwise first show on a lent GPU.

Exit status 1 if a training kernel (the gate pair, the convolution-gate kernel) spills; the
generation kernel's spills are reported, not judged (its speed was measured with them).
Run with TRITON_INTERPRET unset (the interpreter replaces the kernels with Python functions).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqspeech.errors import UserError  # noqa: E402

# the gpu.yaml decoder, a batch-32 crop of 16,384 samples
R, G, S, Q, HOP, FRAMES = 64, 128, 128, 256, 64, 256


def kernels(frames_per_program: int | None = None, generation_warps: tuple[int, ...] = (),
            pair_warps: int | None = None) -> list[dict]:
    """name, the jitted function, its argument types, its constexprs and warps (as launched, unless
    ``frames_per_program`` sets the convolution-gate kernel's FPP, ``generation_warps`` lists warp
    counts to compile the generation kernel with or ``pair_warps`` sets the gate pair's warps)."""
    from vqspeech.generation import triton_kernel
    from vqspeech.generation.triton_backend import KernelShape
    from vqspeech.models import gate_kernel, gate_triton, linear_gate, linear_gate_triton

    sizes = {"T": "i32", "F": "i32", "hop": "i32"}
    pair = gate_kernel.kernel_shape(HOP, G)
    pair_warps = pair_warps or pair["num_warps"]
    del pair["num_warps"]
    fused = linear_gate.kernel_shape(HOP, 2 * R, G, FRAMES)
    fused_warps = fused.pop("num_warps")
    fused["FPP"] = frames_per_program or fused["FPP"]
    fused_args = {**sizes, "K": "i32", "G": "i32", **{k: "constexpr" for k in (*fused, "IEEE")}}
    pair_args = {**sizes, "G": "i32", **{k: "constexpr" for k in pair}}
    shape = KernelShape()
    gen = dict(out_ptr="*i64", logits_ptr="*fp32", teacher_ptr="*i64", uniforms_ptr="*fp64", embed_ptr="*fp32",
               w_past_ptr="*bf16", w_cur_ptr="*bf16", cond_ptr="*fp32", skip0_ptr="*fp32", w_skip_ptr="*bf16",
               w_res_ptr="*bf16", b_res_ptr="*fp32", w1_ptr="*bf16", b1_ptr="*fp32", w2_ptr="*bf16", b2_ptr="*fp32",
               dil_ptr="*i64", off_ptr="*i64", queue_ptr="*fp32", B="i32", T="i32", F="i32", L="i32", hop="i32",
               inv_temp="fp32", first_class="i32")
    gen_consts = dict(R=R, G=G, S=S, Q=Q, BLOCK=shape.block, ARGMAX=False, TEACHER=False, STORE_LOGITS=False,
                      PRECISION="ieee", BF16=True)
    generation = [{"name": f"generation, bf16, block {shape.block}, {w} warps", "fn": triton_kernel.wavenet_generate,
                   "training": False, "args": {**gen, **{k: "constexpr" for k in gen_consts}}, "consts": gen_consts,
                   "warps": w} for w in generation_warps or (shape.num_warps,)]
    fpp = f", {fused['FPP']} frames a program" if frames_per_program else ""
    return [
        {"name": "gate pair, forward (training)", "fn": gate_triton.gate_forward, "training": True,
         "args": {"h_ptr": "*bf16", "cond_ptr": "*bf16", "z_ptr": "*bf16", **pair_args}, "consts": pair,
         "warps": pair_warps},
        {"name": "gate pair, backward (training)", "fn": gate_triton.gate_backward, "training": True,
         "args": {"gz_ptr": "*bf16", "h_ptr": "*bf16", "cond_ptr": "*bf16", "gh_ptr": "*bf16", "gcond_ptr": "*bf16",
                  **pair_args}, "consts": pair, "warps": pair_warps},
        {"name": f"convolution-gate, forward (training){fpp}", "fn": linear_gate_triton.linear_gate_forward,
         "training": True, "args": {"x_ptr": "*bf16", "w_ptr": "*bf16", "bias_ptr": "*fp32", "cond_ptr": "*bf16",
                                    "z_ptr": "*bf16", **fused_args},
         "consts": {**fused, "IEEE": False}, "warps": fused_warps},
        {"name": f"convolution-gate, backward (training){fpp}", "fn": linear_gate_triton.linear_gate_backward,
         "training": True, "args": {"gz_ptr": "*bf16", "x_ptr": "*bf16", "w_ptr": "*bf16", "bias_ptr": "*fp32",
                                    "cond_ptr": "*bf16", "gh_ptr": "*bf16", "gcond_ptr": "*bf16", **fused_args},
         "consts": {**fused, "IEEE": False}, "warps": fused_warps},
        *generation,
    ]


def resources(kernel: dict, arch: int) -> dict:
    """Compile ``kernel`` for sm_<arch> and read its resource usage from the cubin."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    t0 = time.perf_counter()
    compiled = triton.compile(ASTSource(fn=kernel["fn"], signature=kernel["args"], constexprs=kernel["consts"]),
                              target=GPUTarget("cuda", arch, 32), options={"num_warps": kernel["warps"]})
    seconds = time.perf_counter() - t0
    cuobjdump = Path(triton.__file__).parent / "backends/nvidia/bin/cuobjdump"
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "kernel.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        usage = subprocess.run([str(cuobjdump), "-res-usage", str(cubin)], capture_output=True, text=True,
                               check=True).stdout
    line = usage.strip().splitlines()[-1]
    fields = dict(part.split(":", 1) for part in line.split() if ":" in part)
    regs = int(fields["REG"])
    threads = 32 * kernel["warps"]
    return {"registers": regs, "spilled_bytes": int(fields["STACK"]), "shared_bytes": int(fields["SHARED"]),
            "warps": kernel["warps"], "resident_warps": (65536 // (regs * threads)) * kernel["warps"],
            "compile_s": seconds}  # (0 when triton's cache has it)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90: H100 and H200)")
    p.add_argument("--frames-per-program", type=int, default=None,
                   help="the convolution-gate kernel's frames per program (default: its launcher's, 8)")
    p.add_argument("--generation-warps", default=None,
                   help="warp counts to compile the generation kernel with, e.g. 2,4,8 (default: its launcher's, 4)")
    p.add_argument("--gate-pair-warps", type=int, default=None, help="the gate pair's warps (default: its launcher's, 8)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise UserError("TRITON_INTERPRET is set: the interpreter replaces the kernels; run without it")
    try:
        import triton
    except ImportError:
        raise UserError("triton is not installed (pip install 'vqspeech[gpu]')") from None
    print(f"# triton {triton.__version__}, compiled for sm_{args.arch}; the gpu.yaml decoder (64/128/128, hop 64, bf16)")
    print("| kernel | warps | registers / thread | spilled bytes / thread | shared bytes | resident warps / SM (registers) |")
    print("|---|---:|---:|---:|---:|---:|")
    rows, spilling = {}, []
    try:
        warps = tuple(int(w) for w in args.generation_warps.split(",")) if args.generation_warps else ()
    except ValueError:
        raise UserError(f"--generation-warps: a comma-separated list of integers, got {args.generation_warps!r}") from None
    for k in kernels(args.frames_per_program, warps, args.gate_pair_warps):
        r = resources(k, args.arch)
        rows[k["name"]] = r
        print(f"| {k['name']} | {r['warps']} | {r['registers']} | {r['spilled_bytes']} | {r['shared_bytes']} | "
              f"{r['resident_warps']} |", flush=True)
        if k["training"] and r["spilled_bytes"]:
            spilling.append(k["name"])
    if args.json:
        Path(args.json).write_text(json.dumps({"arch": args.arch, "triton": triton.__version__, "kernels": rows},
                                              indent=2))
    if spilling:
        print(f"spills in: {', '.join(spilling)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    raise SystemExit(run_user_command(main, prog=Path(__file__).name))
