"""The alternative compiled forms of cached generation that benchmarks/generation.py compares
with the shipped numba path: each must give the reference's samples for the same seed."""

import shutil
import sys
from pathlib import Path

import pytest
import torch

from vqspeech.generation import SamplingOptions, generate_classes

from helpers import sharp_tiny_wavenet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from generation_backends import BACKENDS  # noqa: E402


def _model(seed=0):
    return sharp_tiny_wavenet(seed)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend_gives_the_reference_samples(name):
    if "compile" in name and shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("torch.compile on the CPU needs a C++ compiler")
    m = _model()
    codes = torch.randint(0, 16, (3, 12))
    spk = torch.tensor([0, 2, 1])
    T = 12 * m.hop
    options = [SamplingOptions(seed=4), SamplingOptions(seed=5, temperature=0.6)]
    if "compile" not in name:  # one compiled graph per sampling mode; keep the test short
        options.append(SamplingOptions(argmax=True))
    for opts in options:
        ref = generate_classes(m, codes, spk, T, opts, "reference")
        out = BACKENDS[name](m, codes, spk, T, opts.uniforms(3, T), opts)
        assert out.shape == (3, T) and out.dtype == torch.long
        assert torch.equal(out, ref), (name, opts)
