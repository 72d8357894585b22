"""The bfloat16 CPU generators: AVX512_BF16 (method ``bf16-cpu``, vqspeech.generation.bf16_cpu_backend),
the same kernel on AMX tiles (``amx-cpu``, vqspeech.generation.amx_cpu_backend) and on AVX2 + FMA
(``avx2-cpu``, vqspeech.generation.avx2_cpu_backend).  Each check runs on every build this CPU
has; a build it lacks is skipped.

Their tolerance, as the registry states it (``exact=False``): the reference's recursion with every
product's inputs and weights rounded to bfloat16 and summed in float32.  So it is checked twice
under teacher forcing: against an independent torch emulation of exactly that rounding (to float32
sum-order noise), and against the float32 reference (to bfloat16 rounding)."""

import math

import numpy as np
import pytest
import torch

from vqspeech.config import config_from_dict
from vqspeech.conversion import decode_codes
from vqspeech.generation import BACKENDS, SamplingOptions, default_method, generate_classes, pick
from vqspeech.generation import amx_cpu_backend as amx
from vqspeech.generation import avx2_cpu_backend as avx2
from vqspeech.generation import bf16_cpu_backend as bf
from vqspeech.generation.step_weights import StepWeights, frame_conditioning
from vqspeech.models import VQVAE

from helpers import sharp_tiny_wavenet

needs_kernel = pytest.mark.skipif(not bf.available(torch.device("cpu")),
                                  reason="no AVX512_BF16 CPU or no C compiler: the bf16-cpu kernel cannot run here")
needs_amx = pytest.mark.skipif(not amx.available(torch.device("cpu")),
                               reason=f"the amx-cpu kernel cannot run here: {amx.unavailable_reason()}")
needs_avx2 = pytest.mark.skipif(not avx2.available(torch.device("cpu")),
                                reason=f"the avx2-cpu kernel cannot run here: {avx2.unavailable_reason()}")
GENERATORS = {"bf16-cpu": bf.Bf16WaveNet, "amx-cpu": amx.AmxWaveNet, "avx2-cpu": avx2.Avx2WaveNet}
# Every check below on each build this CPU runs.
each_kernel = pytest.mark.parametrize("method", [pytest.param("bf16-cpu", marks=needs_kernel),
                                                 pytest.param("amx-cpu", marks=needs_amx),
                                                 pytest.param("avx2-cpu", marks=needs_avx2)])


def _wide_model(seed=0):
    """Channels that fill the kernel's 64-column tiles (2G = 128, S = 64, Q = 256) and leave one
    part-tile ([skip | residual] = 96 columns: a tile of 64 and one of 32)."""
    cfg = config_from_dict({
        "encoder_conf": {"channels": 16, "kernel_sizes": [4, 4, 4, 4], "strides": [2, 2, 2, 2], "latent_dim": 8},
        "quantizer_conf": {"num_codes": 16},
        "decoder_conf": {"layers": 5, "dilation_cycle": 5, "residual_channels": 32, "gate_channels": 64,
                         "skip_channels": 64, "speaker_dim": 4, "cond_channels": 8},
    })
    torch.manual_seed(seed)
    m = VQVAE(cfg, num_speakers=3).eval()
    for p in m.decoder.parameters():
        p.data.mul_(3.0)
    return m


def _odd_model(seed=0):
    """Channel counts that are not multiples of 16 (the kernel pads them with zeros) and 200
    output classes (the padded ones must never be drawn)."""
    cfg = config_from_dict({
        "encoder_conf": {"channels": 16, "kernel_sizes": [4, 4, 4, 4], "strides": [2, 2, 2, 2], "latent_dim": 8},
        "quantizer_conf": {"num_codes": 16},
        "decoder_conf": {"layers": 4, "dilation_cycle": 4, "residual_channels": 24, "gate_channels": 20,
                         "skip_channels": 40, "speaker_dim": 4, "cond_channels": 8, "quantization_channels": 200},
    })
    torch.manual_seed(seed)
    m = VQVAE(cfg, num_speakers=3).eval()
    for p in m.decoder.parameters():
        p.data.mul_(3.0)
    return m


def _bf16(t):
    return t.to(torch.bfloat16).float()


@torch.no_grad()
def emulate_bf16_logits(model, codes, speaker, teacher):
    """(B, Q, T) teacher-forced logits of the cached recursion (reference.incremental_step) with
    every product's inputs and weights rounded to bfloat16, in torch."""
    w = StepWeights.from_decoder(model.decoder)
    cond = frame_conditioning(model, codes, speaker, w.b_conv)
    B, T = teacher.shape
    queues = [torch.zeros(B, w.embed.shape[1], int(d)) for d in w.dilations]
    prev = torch.full((B,), model.decoder.cfg.quantization_channels // 2)  # the kernel's first input too
    out = []
    for t in range(T):
        x = w.embed[prev]
        skip = w.b_skip.sum(0)
        for l, q in enumerate(queues):
            slot = t % q.shape[2]
            h = _bf16(q[:, :, slot]) @ _bf16(w.w_past[l]) + _bf16(x) @ _bf16(w.w_cur[l]) + cond[l, :, t // model.hop]
            q[:, :, slot] = x
            a, b = h.chunk(2, dim=1)
            z = _bf16(torch.tanh(a) * torch.sigmoid(b))
            skip = skip + z @ _bf16(w.w_skip[l])
            x = (x + z @ _bf16(w.w_res[l]) + w.b_res[l]) * math.sqrt(0.5)
        o1 = torch.relu(_bf16(torch.relu(skip)) @ _bf16(w.w1) + w.b1)
        out.append(_bf16(o1) @ _bf16(w.w2) + w.b2)
        prev = teacher[:, t]
    return torch.stack(out, dim=2)


@each_kernel
@pytest.mark.parametrize("make", [sharp_tiny_wavenet, _wide_model, _odd_model],
                         ids=["part-tiles", "64-column-tiles", "padded-channels"])
def test_logits_equal_a_bf16_emulation_and_stay_near_float32(make, method):
    m = make()
    codes = torch.randint(0, 16, (5, 5), generator=torch.Generator().manual_seed(1))  # 5 rows: a block of 4 + 1
    spk = torch.tensor([0, 2, 1, 0, 1])
    T = 5 * m.hop  # past every layer's queue
    Q = m.decoder.cfg.quantization_channels
    teacher = torch.randint(0, Q, (5, T), generator=torch.Generator().manual_seed(2))
    out, logits = generate_classes(m, codes, spk, T, SamplingOptions(), method, teacher=teacher,
                                   return_logits=True)
    assert logits.shape == (5, Q, T) and out.max() < Q
    emulated = emulate_bf16_logits(m, codes, spk, teacher)
    _, ref = generate_classes(m, codes, spk, T, SamplingOptions(), "reference", teacher=teacher, return_logits=True)
    span = (ref.amax(1) - ref.amin(1)).mean().item()
    assert span > 5.0  # logits far from uniform: the comparison means something
    # The emulation and the kernel round the same values to bfloat16, but their float32 sums differ
    # in order, so now and then one rounding goes the other way and that element's later logits
    # move by a bfloat16 step: most steps agree to float32 noise, and the mean error is a small
    # fraction of bfloat16's own against float32.
    to_emulated = (logits - emulated).abs()
    to_float32 = (logits - ref).abs()
    assert (to_emulated.amax(1) < 1e-4 * span).double().mean().item() >= 0.85
    assert to_emulated.mean().item() < 0.1 * to_float32.mean().item()
    assert 1e-4 * span < to_float32.max().item() < 0.03 * span  # bfloat16 rounding: visible, within 3%
    # The draws invert the kernel's own softmax at the seed's uniforms, as sampling.pick does.
    u = SamplingOptions().uniforms(5, T)
    picked = torch.stack([pick(logits[:, :, t], u[:, t], SamplingOptions()) for t in range(T)], dim=1)
    assert (out == picked).double().mean().item() >= 0.995


@each_kernel
def test_argmax_and_temperature_draws_follow_the_kernels_logits(method):
    m = sharp_tiny_wavenet(1)
    codes = torch.randint(0, 16, (3, 4), generator=torch.Generator().manual_seed(3))
    spk = torch.tensor([1, 0, 2])
    T = 4 * m.hop
    teacher = torch.randint(0, 256, (3, T), generator=torch.Generator().manual_seed(4))
    for opts in (SamplingOptions(argmax=True), SamplingOptions(seed=7, temperature=0.5)):
        out, logits = generate_classes(m, codes, spk, T, opts, method, teacher=teacher, return_logits=True)
        u = opts.uniforms(3, T)
        picked = torch.stack([pick(logits[:, :, t], u[:, t], opts) for t in range(T)], dim=1)
        assert (out == picked).double().mean().item() >= 0.995


@each_kernel
def test_free_running_samples_start_on_the_references_path(method):
    """Sampling feeds back its own draws: every element's first sample (the same input, logits a
    bfloat16 rounding apart) is the reference's, and most of the first eight, until a draw lands
    within that rounding of a class boundary and the element takes another path."""
    m = sharp_tiny_wavenet(2)
    codes = torch.randint(0, 16, (4, 6), generator=torch.Generator().manual_seed(5))
    spk = torch.tensor([0, 1, 2, 0])
    opts = SamplingOptions(seed=3)
    ref = generate_classes(m, codes, spk, opts=opts, method="reference")
    out = generate_classes(m, codes, spk, opts=opts, method=method)
    assert out.shape == ref.shape and out.dtype == torch.long
    assert torch.equal(out[:, 0], ref[:, 0])
    assert (out[:, :8] == ref[:, :8]).double().mean().item() >= 0.75
    assert out.min() >= 0 and out.max() < 256


@each_kernel
def test_samples_do_not_depend_on_the_thread_count(method):
    """37 rows: the AMX build takes at most 32 per block, so one thread runs blocks of 19 and 18
    rows (two row tiles each) and three threads blocks of 13 or 12 (one row tile): the two forms
    of its products agree to the bit.  The AVX512 build runs one block per thread."""
    m = _wide_model(1)
    B = 37
    codes = torch.randint(0, 16, (B, 3), generator=torch.Generator().manual_seed(6))
    spk = torch.arange(B) % 3
    opts = SamplingOptions(seed=2)
    T = 3 * m.hop
    g = GENERATORS[method].from_model(m)
    one = g.generate(codes, spk, T, opts.uniforms(B, T), opts, blocks=1)
    for threads in (2, 3):
        assert torch.equal(one, g.generate(codes, spk, T, opts.uniforms(B, T), opts, blocks=threads))


@each_kernel
def test_folded_conversion_runs_the_backend_on_overlapping_segments(method):
    """convert-voice's folded path: segments generated as one batch give the utterance's length,
    and the same seed gives the same waveform twice."""
    m = _wide_model(2)
    codes = torch.randint(0, 16, (40,), generator=torch.Generator().manual_seed(7))
    opts = SamplingOptions(seed=1)
    a = decode_codes(m, codes, 1, opts, method=method, fold=True, max_batch=4)
    b = decode_codes(m, codes, 1, opts, method=method, fold=True, max_batch=4)
    assert a.shape == (40 * m.hop,) and np.array_equal(a, b)
    assert np.abs(a).max() <= 1.0 and np.abs(a).max() > 0.01


def test_packing_puts_two_inputs_of_16_columns_in_each_64_byte_row():
    """(4, 80) -> a tile of 64 columns then one of 16, each (K/2, width, 2)."""
    w = np.random.default_rng(0).standard_normal((4, 80)).astype(np.float32)
    p = bf.pack_bf16(w)
    assert p.shape == (4 * 80,) and p.dtype == np.uint16 and p.flags.c_contiguous
    as_float = torch.from_numpy(p.astype(np.int32) << 16).view(torch.float32).numpy()
    w = torch.from_numpy(w).bfloat16().float().numpy()  # what packing rounds each weight to
    tiles = [(0, 64, as_float[:256].reshape(2, 64, 2)), (64, 16, as_float[256:].reshape(2, 16, 2))]
    for m0, width, tile in tiles:
        for kp in range(2):
            for c in range(width):
                for k2 in range(2):
                    assert tile[kp, c, k2] == w[2 * kp + k2, m0 + c]
    stacked = bf.pack_bf16(np.stack([w, 2 * w]))  # leading dimensions (layers) are kept
    assert stacked.shape == (2, 320) and np.array_equal(stacked[0], bf.pack_bf16(w))
    with pytest.raises(ValueError, match="even number of input rows"):
        bf.pack_bf16(np.zeros((3, 64), np.float32))


def test_build_is_atomic_and_cached(tmp_path, monkeypatch):
    try:
        lib = bf.build(tmp_path)
    except bf.KernelUnavailable as e:
        pytest.skip(str(e))
    assert lib.exists() and [p.name for p in tmp_path.iterdir()] == [lib.name]  # no temporary left behind
    mtime = lib.stat().st_mtime_ns
    assert bf.build(tmp_path) == lib and lib.stat().st_mtime_ns == mtime  # reused, not rebuilt
    monkeypatch.setenv("CC", "false")  # a "compiler" that fails: one clear line, nothing left behind
    other = tmp_path / "other"
    with pytest.raises(bf.KernelUnavailable, match="could not build bf16_cpu_kernel.c"):
        bf.build(other)
    assert list(other.iterdir()) == []


def test_without_the_cpu_feature_the_backend_is_unavailable_and_numba_gemm_is_the_default(pretend_cpu):
    pretend_cpu("avx512f", "amx_tile", "amx_bf16")
    assert not BACKENDS["bf16-cpu"].runs_on(torch.device("cpu"))
    assert default_method(torch.device("cpu")) == "numba-gemm"
    m = sharp_tiny_wavenet()
    with pytest.raises(bf.KernelUnavailable, match="needs a CPU with avx512_bf16"):
        generate_classes(m, torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, dtype=torch.long),
                         method="bf16-cpu")
    from vqspeech.generation.registry import choose_method as cli_method
    from vqspeech.errors import UserError

    assert cli_method(None, torch.device("cpu")) == "numba-gemm"
    with pytest.raises(UserError, match="^--method bf16-cpu: the bf16-cpu generator needs a CPU with avx512_bf16"):
        cli_method("bf16-cpu", torch.device("cpu"))


@needs_kernel
def test_on_a_bf16_cpu_it_is_the_cpu_default_unless_amx_runs():
    assert default_method(torch.device("cpu")) == ("amx-cpu" if amx.available(torch.device("cpu")) else "bf16-cpu")
    assert not BACKENDS["bf16-cpu"].runs_on(torch.device("cuda"))
    assert not BACKENDS["amx-cpu"].runs_on(torch.device("cuda"))


def test_sizes_the_kernel_would_read_past_are_refused_before_it_runs():
    m = sharp_tiny_wavenet()
    g = bf.Bf16WaveNet.from_model(m)
    codes, spk = torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long)
    T = 3 * m.hop
    with pytest.raises(ValueError, match=f"{T + 1} samples exceed the 3 frames of codes"):
        g.generate(codes, spk, T + 1, SamplingOptions().uniforms(2, T + 1), SamplingOptions())
    with pytest.raises(ValueError, match=r"must be \(2, 48\)"):
        g.generate(codes, spk, T, SamplingOptions().uniforms(1, T), SamplingOptions())


@each_kernel
def test_padded_classes_are_never_drawn(method):
    """200 classes padded to 208: a flat softmax (temperature 3) or argmax never picks 200-207.
    The channels are padded to 16s for AVX512, to 32s for AMX tiles' 32-input rows."""
    m = _odd_model(1)
    codes = torch.randint(0, 16, (3, 8), generator=torch.Generator().manual_seed(8))
    spk = torch.tensor([0, 1, 2])
    for opts in (SamplingOptions(seed=4, temperature=3.0), SamplingOptions(argmax=True)):
        out = generate_classes(m, codes, spk, opts=opts, method=method)
        assert out.shape == (3, 8 * m.hop) and 0 <= out.min() and out.max() < 200
    assert GENERATORS[method].from_model(m).padded == {"bf16-cpu": (32, 32, 48, 208), "avx2-cpu": (32, 32, 48, 208),
                                                       "amx-cpu": (32, 32, 64, 208)}[method]


def test_the_default_fold_gives_every_cpu_thread_four_segments():
    """bf16-cpu, avx2-cpu and numba-gemm: 8 segments on 2 threads (the measured best there for
    each), and 4 per thread on a bigger machine, so no core sits idle; numba keeps its fixed 16."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert BACKENDS["bf16-cpu"].default_fold() == 8
        torch.set_num_threads(6)
        assert BACKENDS["bf16-cpu"].default_fold() == 24
        assert BACKENDS["numba-gemm"].default_fold() == 24
        assert BACKENDS["numba"].default_fold() == 16
        assert BACKENDS["avx2-cpu"].default_fold() == 24
        assert BACKENDS["amx-cpu"].default_fold() == 96  # 16 per thread: one full tile of rows each
        torch.set_num_threads(2)
        assert BACKENDS["amx-cpu"].default_fold() == 32
    finally:
        torch.set_num_threads(threads)


def test_without_amx_the_cpu_default_falls_back_to_bf16_cpu(pretend_cpu):
    """A CPU with AVX512_BF16 but no AMX: amx-cpu names the missing flags, bf16-cpu is the default."""
    pretend_cpu("avx512f", "avx512_bf16", "amx_tile")
    cpu = torch.device("cpu")
    assert not BACKENDS["amx-cpu"].runs_on(cpu)
    assert default_method(cpu) == ("bf16-cpu" if bf.available(cpu) else "numba-gemm")
    from vqspeech.generation.registry import choose_method as cli_method
    from vqspeech.errors import UserError

    with pytest.raises(UserError, match="^--method amx-cpu: the amx-cpu generator needs a CPU with amx_bf16 "):
        cli_method("amx-cpu", cpu)


@needs_amx
def test_the_amx_build_refuses_blocks_of_more_than_32_rows():
    """Two row tiles hold 32 rows: the raw kernel returns -1 for 33 (the Python side never asks)."""
    m = sharp_tiny_wavenet()
    g = amx.AmxWaveNet.from_model(m)
    lib = bf.library(bf.AMX_BF16)
    Rp, Gp, Sp, Qp = g.padded
    # 33 rows of anything: the size check comes before any pointer is read.
    null = None
    assert lib.vq_bf16_generate_block(0, 33, 33, 1, 1, m.hop, 1, Rp, Gp, Sp, Qp, Qp, *([null] * 16),
                                      1.0, 0, 0, null) == -1


@needs_amx
def test_the_tile_probe_passes_in_a_child_process_where_amx_runs():
    assert bf._probe_tiles(bf.build(variant=bf.AMX_BF16)) is None


@pytest.mark.parametrize("status, message", [
    (-4, "the probe died with signal 4"),
    (3, r"the Linux kernel refused the tile state \(arch_prctl ARCH_REQ_XCOMP_PERM\)"),
    (4, "a test product on the tiles came out wrong"),
    (1, "the probe exited with status 1"),
])
def test_a_machine_whose_tiles_fault_or_fail_the_probe_falls_back_with_one_line(monkeypatch, pretend_cpu, status,
                                                                               message):
    """A CPU can advertise AMX where a hypervisor faults on it: the probe's child takes the fault,
    and amx-cpu is unavailable with the reason, before this process touches a tile."""
    import subprocess

    try:  # the pretended CPU below lets the AVX-512 builds compile and load here; only the probe would run one
        bf._compiler()
    except bf.KernelUnavailable as e:
        pytest.skip(str(e))
    real_run = subprocess.run

    def run(args, **kwargs):  # the probe's child "exits" with status; the compiler runs as it is
        if any("vq_amx_probe" in str(a) for a in args):
            return subprocess.CompletedProcess(args, status, b"", b"")
        return real_run(args, **kwargs)

    monkeypatch.setattr(bf.subprocess, "run", run)
    pretend_cpu("avx512_bf16", "amx_tile", "amx_bf16")
    reason = amx.unavailable_reason()
    assert reason is not None and "\n" not in reason
    assert reason.startswith("the amx-cpu generator cannot use AMX tiles here: ")
    import re
    assert re.search(message, reason)
    assert not BACKENDS["amx-cpu"].runs_on(torch.device("cpu"))
    assert default_method(torch.device("cpu")) == "bf16-cpu"


def test_on_an_avx2_cpu_without_avx512_the_default_is_avx2_cpu_else_numba(pretend_cpu, monkeypatch, tmp_path):
    """An AVX2 + FMA CPU without AVX-512 (most desktop and many server CPUs): avx2-cpu where its
    kernel builds; without a compiler the exact numba, not numba-gemm, whose BLAS products of a
    few rows ran 2.6x slower than numba there (benchmarks/generation.py, README "AVX2")."""
    cpu = torch.device("cpu")
    pretend_cpu("avx2", "fma")
    assert not BACKENDS["bf16-cpu"].runs_on(cpu) and not BACKENDS["amx-cpu"].runs_on(cpu)
    assert default_method(cpu) == ("avx2-cpu" if avx2.available(cpu) else "numba")
    monkeypatch.setenv("CC", "false")  # a compiler that fails: the kernel cannot build
    monkeypatch.setenv("VQSPEECH_CACHE_DIR", str(tmp_path))  # no library built before
    pretend_cpu("avx2", "fma")
    reason = avx2.unavailable_reason()
    assert "could not build bf16_cpu_kernel.c" in reason and "\n" not in reason
    assert default_method(cpu) == "numba"
    pretend_cpu("avx512f", "avx2", "fma")  # AVX-512 without AVX512_BF16 (Skylake-X to Ice Lake)
    assert default_method(cpu) == "numba-gemm"
    pretend_cpu("fma")  # an old CPU: avx2-cpu names what it lacks
    assert avx2.unavailable_reason() == "the avx2-cpu generator needs a CPU with avx2 (this one has none)"
