"""Conversion speed of one 10-second utterance, every decoder measured side by side in one run.

    python benchmarks/conversion.py [--threads 2] [--seconds 10] [--repeat 3]

Rows (random weights: speed does not depend on training):
- ``egs/mini/conf/wavenet.yaml``: the WaveNet decoder of the previous shipped model with folded
  batching, as ``convert-voice`` runs it: with the CPU default (``amx-cpu`` on an AMX CPU,
  ``bf16-cpu`` on an AVX512_BF16 CPU, ``avx2-cpu`` on an AVX2 one; see ``vqspeech
  generation-methods``), ``numba-gemm`` and the exact ``numba`` beside it;
- the spectral decoders of ``default.yaml``, ``pretrained.yaml`` (the shipped model),
  ``spectral_mel_melenc.yaml`` (the log-mel encoder) and ``spectral_mel_big.yaml`` with the
  Griffin-Lim vocoder (32 iterations), split into encode, decoder and vocoder time;
- ``pretrained.yaml`` voiced by the WaveNet vocoder of ``vocoder.yaml`` (the CPU default, folded).
End to end = encode + decode (+ vocoder), the figure the issue's "<= 2 s on 2 cores" target means.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vqspeech.config import load_config  # noqa: E402
from vqspeech.conversion import convert, encode_wav  # noqa: E402
from vqspeech.generation import default_method  # noqa: E402
from vqspeech.models import build_model  # noqa: E402
from vqspeech.vocoders import frames_to_audio  # noqa: E402


CPU_DEFAULT = default_method(torch.device("cpu"))  # what convert-voice uses without --method


def best_of(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def wavenet_vocoder_row(wav: np.ndarray, repeat: int):
    """pretrained.yaml's frames voiced by a (random) WaveNet vocoder of vocoder.yaml, as
    ``convert-voice --vocoder wavenet`` runs it."""
    from vqspeech.vocoders import WaveNetVocoding
    from vqspeech.wavenet_vocoder import LoadedVocoder, WaveNetVocoder, load_vocoder_config

    cfg = load_config(ROOT / "egs/mini/conf/pretrained.yaml")
    vcfg = load_vocoder_config(ROOT / "egs/mini/conf/vocoder.yaml")
    torch.manual_seed(0)
    model = build_model(cfg, 5).eval()
    speakers = [f"s{i}" for i in range(5)]
    vocoding = WaveNetVocoding.bind(LoadedVocoder(WaveNetVocoder(vcfg, 5).eval(), vcfg, speakers, 0), cfg, speakers,
                                    method=CPU_DEFAULT)
    convert(model, wav[:16000], 1, 16000, vocoder=vocoding)  # warm-up (numba compiles)
    total = best_of(lambda: convert(model, wav, 1, 16000, vocoder=vocoding), repeat)
    return f"pretrained + vocoder.yaml ({CPU_DEFAULT}, folded)", "spectral + WaveNet vocoder", total, ""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n = int(args.seconds * 16000)
    wav = (0.3 * np.sin(np.arange(n) * 2 * np.pi * 150 / 16000) * rng.uniform(0.2, 1, n)).astype(np.float32)
    rows = []
    configs = [ROOT / "egs/mini/conf" / f"{n}.yaml"
               for n in ("wavenet", "default", "pretrained", "spectral_mel_melenc", "spectral_mel_big")]
    for path in configs:
        cfg = load_config(path)
        torch.manual_seed(0)
        model = build_model(cfg, 5).eval()
        if cfg.decoder != "spectral":
            for method in dict.fromkeys((CPU_DEFAULT, "numba-gemm", "numba")):
                convert(model, wav[:16000], 1, 16000, method=method)  # warm-up (numba compiles on the first call)
                total = best_of(lambda: convert(model, wav, 1, 16000, method=method), args.repeat)
                rows.append((f"{path.stem} ({method}, folded)", cfg.decoder, total, ""))
            continue
        convert(model, wav[:16000], 1, 16000)
        total = best_of(lambda: convert(model, wav, 1, 16000), args.repeat)
        with torch.no_grad():
            enc = best_of(lambda: encode_wav(model, wav), args.repeat)
            codes = encode_wav(model, wav)
            dec = best_of(lambda: model.frames(codes[None], torch.tensor([1])), args.repeat)
            frames = model.frames(codes[None], torch.tensor([1]))
            voc = best_of(lambda: frames_to_audio(model, frames), args.repeat)
        parts = f"encode {enc:.2f} s, decoder {dec:.2f} s, Griffin-Lim {voc:.2f} s"
        rows.append((path.stem, cfg.decoder, total, parts))
    rows.append(wavenet_vocoder_row(wav, args.repeat))
    base = rows[0][2]
    print(f"one {args.seconds:.0f} s utterance, {args.threads} threads, best of {args.repeat}")
    print("| config | decoder | end to end | x real time | vs WaveNet | parts |")
    print("|---|---|---:|---:|---:|---|")
    for name, kind, t, parts in rows:
        print(f"| {name} | {kind} | {t:.2f} s | {args.seconds / t:.1f} | {base / t:.1f}x | {parts} |")


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    # a user error (a config or data directory that does not read, an absent device): one line, exit 2
    raise SystemExit(run_user_command(main, prog=Path(__file__).name))
