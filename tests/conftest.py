"""Shared fixtures: a tiny synthesized mini corpus, built once per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# One torch thread per process unless the caller says otherwise.  The tests' models are tiny, and
# many tests run CLIs and workers as subprocesses beside this one: in a fresh clone on 2 cores
# the suite took 10.6 min with one thread per process against 12.7 with torch's default two
# (thread hand-offs cost more than they give at these sizes).  Tests that are about threads set
# them themselves (bf16-cpu's blocks, numba's threads, the training workers).  Set before torch is
# imported, and inherited by the subprocesses.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

# Without CUDA the Triton generator runs in Triton's interpreter; it must be on before triton is
# first imported (tests/test_generation_triton.py).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parents[1]


def _need_flite():
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (make setup installs it)")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """6 sentences x every available voice: data/{train,dev,test} with phones.ctm, and
    data/train_large (train + the next 2 sentences)."""
    _need_flite()
    from vqspeech.corpus_prep.mini import build_mini_corpus

    out = tmp_path_factory.mktemp("mini")
    build_mini_corpus(out, num_sentences=6, progress=False, extra_train_sentences=2)
    return out


@pytest.fixture(scope="session")
def trained_tiny(tiny_corpus, tmp_path_factory) -> Path:
    """A tiny VQ-VAE trained for 300 steps on the tiny corpus: exp dir with checkpoint.pt."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from helpers import tiny_config

    from vqspeech.train import train

    exp = tmp_path_factory.mktemp("exp_tiny")
    cfg = tiny_config(max_steps=300, batch_size=4, segment_samples=2048, lr=3e-3, log_every=50,
                      val_every=1000, checkpoint_every=300, audio_samples=0)
    train(cfg, tiny_corpus / "data" / "train", None, exp, progress=False)
    return exp


@pytest.fixture
def pretend_cpu(monkeypatch):
    """``pretend_cpu(*flags)``: the bfloat16 kernels see a CPU with only these feature flags, their
    cached build-or-reason cleared so every backend asks again (and cleared after the test too)."""
    from vqspeech.generation import bf16_cpu_backend

    def pretend(*flags: str) -> None:
        monkeypatch.setattr(bf16_cpu_backend, "cpu_flags", lambda: frozenset(flags))
        bf16_cpu_backend.load_kernel.cache_clear()

    yield pretend
    bf16_cpu_backend.load_kernel.cache_clear()
