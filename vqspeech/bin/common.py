"""Argument helpers shared by the inference commands."""

from __future__ import annotations

import argparse

import torch

from ..errors import UserError
from .runner import float_at_least, int_at_least


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="checkpoint (exp/<tag>/checkpoint.pt); default: the shipped model")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1")


def add_sampling_args(p: argparse.ArgumentParser) -> None:
    from ..generation import METHODS
    from ..vocoders import VOCODERS

    p.add_argument("--method", default=None, choices=list(METHODS),
                   help="WaveNet generation backend (default on CPU, with a C compiler found: amx-cpu where the "
                        "CPU has AMX, else bf16-cpu where it has AVX512_BF16, else avx2-cpu where it has AVX2; "
                        "without: numba-gemm on an AVX-512 CPU, else numba; on CUDA: triton when installed, else "
                        "cuda-graph; 'vqspeech generation-methods' lists them; 'fast' is the old name of numba)")
    p.add_argument("--temperature", type=float_at_least(0, strictly=True), default=1.0, help="softmax temperature (> 0)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="sampling seed (same seed, same output)")
    p.add_argument("--argmax", action="store_true", help="take the most likely sample instead of sampling")
    p.add_argument("--no-fold", action="store_true", help="generate each utterance as one sequence")
    p.add_argument("--max-batch", type=int_at_least(1), default=None,
                   help="segments per utterance for folded batching (default: the backend's, 4 per thread and at "
                        "least 8 for bf16-cpu, avx2-cpu and numba-gemm, 16 per thread and at least 32 for amx-cpu, "
                        "16 for numba, 512 for triton)")
    p.add_argument("--warmup-samples", type=_warmup_arg, default=None, metavar="N|full",
                   help="warm-up samples generated and dropped before each folded segment, or 'full' for the "
                        "decoder's receptive field (default: the history 'vqspeech measure-history --write' "
                        "stored in the checkpoint, else the receptive field; shorter is faster)")
    p.add_argument("--vocoder", default=None, choices=list(VOCODERS),
                   help="spectral models: frames -> audio: griffin-lim (the default without --vocoder-model) or "
                        "wavenet (a trained WaveNet vocoder, --vocoder-model); WaveNet models ignore it")
    p.add_argument("--vocoder-model", default=None, metavar="VOCODER_PT",
                   help="a WaveNet vocoder from 'vqspeech train-vocoder' (exp/<vocoder>/vocoder.pt); implies "
                        "--vocoder wavenet")


def add_intonation_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--intonation", type=intonation_arg, default=1.0, metavar="SCALE|none",
                   help="models that read the source's pitch (decoder_conf.source_pitch): the source's intonation "
                        "scaled by SCALE (1: as spoken, the default; 0: a monotone at the target voice's mean "
                        "pitch; 2: twice as lively; at most 3), or 'none': the codes alone, the model picks the pitch")


def intonation_arg(value: str):
    """``--intonation``: 'none' -> None, else a float within [0, 3]."""
    from ..pitch import MAX_INTONATION

    if value == "none":
        return None
    try:
        scale = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a scale or 'none', got {value!r}") from None
    if not 0.0 <= scale <= MAX_INTONATION:
        raise argparse.ArgumentTypeError(f"must be within [0, {MAX_INTONATION:g}] (or 'none'), got {value}")
    return scale


def _warmup_arg(value: str):
    if value == "full":
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of samples or 'full', got {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (or 'full'), got {n}")
    return n


def sampling_from_args(args):
    from ..generation import SamplingOptions

    # --temperature, --max-batch and --warmup-samples are range-checked by their argparse types.
    return SamplingOptions(temperature=args.temperature, seed=args.seed, argmax=args.argmax)


def vocoder_from_args(args, lm, method: str, device):
    """``"griffin-lim"`` or a bound :class:`vqspeech.vocoders.WaveNetVocoding` from --vocoder/--vocoder-model."""
    from ..vocoders import WaveNetVocoding

    name = args.vocoder or ("wavenet" if args.vocoder_model else "griffin-lim")
    if name == "griffin-lim":
        if args.vocoder_model:
            raise UserError("--vocoder-model goes with --vocoder wavenet, not griffin-lim")
        return name
    if not args.vocoder_model:
        raise UserError("--vocoder wavenet needs --vocoder-model (a vocoder.pt from 'vqspeech train-vocoder')")
    return WaveNetVocoding.load(args.vocoder_model, lm, method, fold=not args.no_fold, max_batch=args.max_batch,
                                device=device, warmup=args.warmup_samples)


def load_model_arg(path: str | None, device: torch.device):
    from ..checkpoint import load_model
    from ..pretrained import model_path_or_shipped

    return load_model(model_path_or_shipped(path), device)


def speaker_index(lm, name: str) -> int:
    if name not in lm.speakers:
        raise UserError(f"unknown speaker {name!r}; valid speakers: {', '.join(lm.speakers)}")
    return lm.speakers.index(name)


def report_failures(prog: str, failures: list[str], total: int, what: str) -> int:
    """Print each failed item and a summary line on stderr; return the exit status (1 if any failed)."""
    import sys

    if not failures:
        return 0
    for f in failures:
        print(f"{prog}: failed: {f}", file=sys.stderr)
    print(f"{prog}: error: {len(failures)} of {total} {what} failed", file=sys.stderr)
    return 1
