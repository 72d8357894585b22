"""The BLAS-product CPU generator (method ``numba-gemm``, vqspeech.generation.numba_gemm_backend).

Its tolerance, as the registry states it (``exact=False``): the same recursion as the reference with
sums in BLAS's order, so logits agree to float32 rounding and a draw differs only where the
uniform lands within that rounding of a class boundary."""

import numba
import numpy as np
import pytest
import torch

from vqspeech.conversion import decode_codes
from vqspeech.generation import BACKENDS, SamplingOptions, generate_classes
from vqspeech.models import VQVAE

from helpers import sharp_tiny_wavenet, tiny_config


@pytest.mark.parametrize("opts", [SamplingOptions(seed=4), SamplingOptions(seed=5, temperature=0.6),
                                  SamplingOptions(argmax=True)], ids=["t1", "t0.6", "argmax"])
def test_gemm_generator_gives_the_reference_samples(opts):
    """Five elements (split into one block per numba thread), 40 frames: past every layer's queue."""
    m = sharp_tiny_wavenet()
    codes = torch.randint(0, 16, (5, 40), generator=torch.Generator().manual_seed(1))
    spk = torch.tensor([0, 2, 1, 0, 1])
    ref = generate_classes(m, codes, spk, opts=opts, method="reference")
    out = generate_classes(m, codes, spk, opts=opts, method="numba-gemm")
    assert out.dtype == torch.long and out.shape == ref.shape == (5, 40 * m.hop)
    assert torch.equal(out, ref)


def test_gemm_generator_agrees_with_the_reference_on_a_near_uniform_decoder():
    """The default init gives near-uniform logits, where boundaries are closest together: still
    at least 99% of 4 x 1,280 samples are the reference's (a divergence continues to the end of
    its element, so this bounds how early any element may leave the reference's path)."""
    torch.manual_seed(3)
    m = VQVAE(tiny_config(), num_speakers=2).eval()
    codes = torch.randint(0, 16, (4, 80), generator=torch.Generator().manual_seed(2))
    spk = torch.tensor([0, 1, 1, 0])
    opts = SamplingOptions(seed=9)
    ref = generate_classes(m, codes, spk, opts=opts, method="reference")
    out = generate_classes(m, codes, spk, opts=opts, method="numba-gemm")
    assert (out == ref).float().mean().item() >= 0.99


def test_gemm_generator_does_not_depend_on_the_thread_count():
    """Each element's draws are its own: one block or one per thread gives the same samples."""
    m = sharp_tiny_wavenet(1)
    codes = torch.randint(0, 16, (4, 12), generator=torch.Generator().manual_seed(3))
    spk = torch.tensor([0, 1, 2, 0])
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = generate_classes(m, codes, spk, opts=SamplingOptions(seed=2), method="numba-gemm")
    finally:
        numba.set_num_threads(threads)
    many = generate_classes(m, codes, spk, opts=SamplingOptions(seed=2), method="numba-gemm")
    assert torch.equal(one, many)


def test_gemm_weights_are_the_decoders_skip_and_residual_side_by_side():
    from vqspeech.generation.numba_gemm_backend import NumbaGemmWaveNet
    from vqspeech.generation.numba_backend import NumbaWaveNet

    m = sharp_tiny_wavenet()
    g = NumbaGemmWaveNet.from_model(m)
    assert isinstance(g, NumbaGemmWaveNet) and NumbaWaveNet.from_model(m).__class__ is NumbaWaveNet
    S = g.w_skip.shape[2]
    np.testing.assert_array_equal(g.w_out[:, :, :S], g.w_skip)
    np.testing.assert_array_equal(g.w_out[:, :, S:], g.w_res)
    np.testing.assert_allclose(g.skip0, g.b_skip.sum(0), rtol=1e-6)
    assert all(a.flags.c_contiguous for a in (g.w_out, g.skip0, g.w_cat))


def test_folded_conversion_with_the_gemm_generator_matches_the_reference():
    """convert-voice's folded path (segments decoded as one batch) runs the backend unchanged."""
    m = sharp_tiny_wavenet()
    codes = torch.randint(0, 16, (60,), generator=torch.Generator().manual_seed(4))
    opts = SamplingOptions(seed=1)
    ref = decode_codes(m, codes, 1, opts, method="reference", fold=True, max_batch=4)
    out = decode_codes(m, codes, 1, opts, method="numba-gemm", fold=True, max_batch=4)
    assert out.shape == ref.shape and np.array_equal(out, ref)
    assert not BACKENDS["numba-gemm"].exact


def test_the_cpu_default_is_a_gemm_generator_and_an_explicit_method_wins():
    """convert-voice / decode / sample without --method, the demo and training's audio samples all
    ask default_method (amx-cpu where the CPU has AMX, else bf16-cpu where it has AVX512_BF16, else
    avx2-cpu where it has AVX2, else numba-gemm on an AVX-512 CPU and numba elsewhere); an explicit
    --method is kept, and one that cannot run on the CPU is refused."""
    from vqspeech.generation.registry import choose_method as default_method
    from vqspeech.errors import UserError
    from vqspeech.generation import amx_cpu_backend, avx2_cpu_backend, bf16_cpu_backend

    cpu = torch.device("cpu")
    expected = ("amx-cpu" if amx_cpu_backend.available(cpu) else "bf16-cpu" if bf16_cpu_backend.available(cpu)
                else "avx2-cpu" if avx2_cpu_backend.available(cpu)
                else "numba-gemm" if "avx512f" in bf16_cpu_backend.cpu_flags() else "numba")
    assert default_method(None, cpu) == expected
    assert default_method("fast", cpu) == "numba"
    with pytest.raises(UserError, match="--method cuda-graph needs --device cuda"):
        default_method("cuda-graph", cpu)


@pytest.mark.parametrize("method", ["numba", "numba-gemm"])
def test_numba_generation_leaves_torchs_thread_count_alone(method):
    """numba's OpenMP layer shares the OpenMP runtime with torch, and its first parallel launch in
    a process sets the runtime's thread count to numba's: without torch_threads_kept, torch ran
    with 2 threads after a conversion in a process that asked for 1 (a fresh process: only the
    first launch does it)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (f"import torch; from helpers import sharp_tiny_wavenet; from vqspeech.generation import generate_classes; "
            f"m = sharp_tiny_wavenet(); before = torch.get_num_threads(); "
            f"generate_classes(m, torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long), "
            f"method={method!r}); print(before, torch.get_num_threads())")
    tests = Path(__file__).parent
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="2",
               PYTHONPATH=os.pathsep.join([str(tests), str(tests.parent)]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["1", "1"]
