"""The fused Triton generator (vqspeech.generation.triton_backend), run by Triton's interpreter on
the CPU (TRITON_INTERPRET=1) and on the GPU when there is one."""

import numpy as np
import pytest
import torch

from vqspeech.conversion import decode_codes, decode_many
from vqspeech.generation import SamplingOptions, generate_classes
from vqspeech.models import VQVAE

from helpers import sharp_tiny_wavenet, tiny_config

triton = pytest.importorskip("triton", reason="triton is not installed (pip install -e .[gpu])")


def _model(seed=0):
    return sharp_tiny_wavenet(seed)


@pytest.fixture
def interpret():
    """Triton's interpreter must be on before triton is first imported (its library functions are
    jitted at import); tests/conftest.py turns it on on machines without CUDA."""
    from vqspeech.generation.triton_backend import interpreting

    if not interpreting():
        pytest.skip("TRITON_INTERPRET is off (a CUDA machine): the kernel is tested on the GPU instead")


@pytest.mark.parametrize("opts", [SamplingOptions(seed=4), SamplingOptions(seed=5, temperature=0.6),
                                  SamplingOptions(argmax=True)], ids=["t1", "t0.6", "argmax"])
def test_interpreted_kernel_gives_the_reference_samples(interpret, opts):
    m = _model()
    codes = torch.randint(0, 16, (3, 3))
    spk = torch.tensor([0, 2, 1])
    T = 3 * m.hop  # 48 samples: past the 16-sample queues of every layer
    ref = generate_classes(m, codes, spk, T, opts, "reference")
    out = generate_classes(m, codes, spk, T, opts, "triton")
    assert out.dtype == torch.long and out.shape == (3, T)
    assert torch.equal(out, ref)


def test_interpreted_kernel_logits_match_the_reference_under_teacher_forcing(interpret):
    m = _model()
    codes = torch.randint(0, 16, (2, 3))
    spk = torch.tensor([1, 2])
    T = 3 * m.hop
    teacher = torch.randint(0, 256, (2, T))
    _, ref = generate_classes(m, codes, spk, T, SamplingOptions(), "reference", teacher=teacher, return_logits=True)
    _, out = generate_classes(m, codes, spk, T, SamplingOptions(), "triton", teacher=teacher, return_logits=True)
    assert ref.abs().max() > 1.0  # the logits are not trivially small
    assert (out - ref).abs().max().item() < 1e-4


@pytest.mark.parametrize("block,warps", [(16, 1), (32, 8)], ids=["one-warp", "block32"])
def test_interpreted_kernel_shapes_give_the_reference_samples(interpret, block, warps):
    """Every kernel layout computes the same recursion: one warp, or a 32-row block, gives the
    reference's samples as the default layout does."""
    from vqspeech.generation.triton_backend import KernelShape, generate_triton

    m = _model()
    codes, spk = torch.randint(0, 16, (3, 3)), torch.tensor([0, 2, 1])
    T, opts = 3 * m.hop, SamplingOptions(seed=6)
    ref = generate_classes(m, codes, spk, T, opts, "reference")
    out = generate_triton(m, codes, spk, T, opts.uniforms(3, T), opts,
                          shape=KernelShape(block=block, num_warps=warps))
    assert torch.equal(out, ref)


def test_interpreted_bf16_kernel_logits_within_the_stated_tolerance(interpret):
    """bf16 rounds weights and product inputs (8-bit mantissas): under teacher forcing its logits
    stay within 2% of the logits' range of the reference, and differ (it is not float32)."""
    from vqspeech.generation.triton_backend import generate_triton

    m = _model()
    codes, spk = torch.randint(0, 16, (2, 3)), torch.tensor([1, 2])
    T = 3 * m.hop
    teacher = torch.randint(0, 256, (2, T))
    _, ref = generate_classes(m, codes, spk, T, SamplingOptions(), "reference", teacher=teacher, return_logits=True)
    _, out = generate_triton(m, codes, spk, T, SamplingOptions().uniforms(2, T), SamplingOptions(), teacher=teacher,
                             return_logits=True, precision="bf16")
    err = (out - ref).abs().max().item()
    scale = (ref.amax() - ref.amin()).item()
    assert 1e-4 < err < 0.02 * scale, (err, scale)
    # a bfloat16 rounding of the inputs, not garbage: the most likely class agrees almost everywhere
    assert (out.argmax(1) == ref.argmax(1)).double().mean().item() > 0.9


def test_tf32_method_is_registered_and_gives_the_reference_samples_when_interpreted(interpret):
    """``triton-tf32`` is the same kernel with TF32 products on CUDA; the interpreter computes
    them in float32, so there it must give the reference's samples."""
    from vqspeech.generation import BACKENDS

    assert BACKENDS["triton-tf32"].runs_on(torch.device("cpu"))  # the interpreter is on
    m = _model()
    codes, spk = torch.randint(0, 16, (2, 3)), torch.tensor([1, 0])
    opts = SamplingOptions(seed=8)
    assert torch.equal(generate_classes(m, codes, spk, 3 * m.hop, opts, "triton-tf32"),
                       generate_classes(m, codes, spk, 3 * m.hop, opts, "reference"))


def test_kernel_settings_apply_within_the_block_only(interpret):
    from vqspeech.generation import triton_backend as tb

    with pytest.raises(ValueError, match="unknown triton precision 'fp8'"):
        with tb.kernel_settings(precision="fp8"):
            generate_classes(_model(), torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, dtype=torch.long),
                             method="triton")
    assert tb._settings["precision"] is None
    with pytest.raises(ValueError, match="block must be a power of two >= 16, got 24"):
        with tb.kernel_settings(shape=tb.KernelShape(block=24)):
            generate_classes(_model(), torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, dtype=torch.long),
                             method="triton")
    assert tb._settings["shape"] == tb.KernelShape()


def test_many_utterances_in_one_batch_equal_one_at_a_time(interpret):
    """decode_many folds every utterance into one kernel launch; with argmax (no draws) each
    utterance must come out as it does alone."""
    m = _model()
    opts = SamplingOptions(argmax=True)
    utts = [torch.randint(0, 16, (4,)) for _ in range(2)]  # equal lengths: the same segment layout
    together = decode_many(m, utts, [0, 2], opts, "triton", max_batch=2)
    unfolded = decode_many(m, utts, [0, 2], opts, "triton", fold=False)
    for codes, spk, wav, whole in zip(utts, [0, 2], together, unfolded):
        assert wav.shape == (codes.shape[0] * m.hop,)
        np.testing.assert_array_equal(wav, decode_codes(m, codes, spk, opts, "triton", max_batch=2))
        np.testing.assert_array_equal(whole, decode_codes(m, codes, spk, opts, "reference", fold=False))


def test_sizes_the_kernel_cannot_take_are_refused(interpret):
    cfg = tiny_config()
    cfg.decoder_conf.residual_channels = 24
    m = VQVAE(cfg, num_speakers=1).eval()
    with pytest.raises(ValueError, match="residual_channels to be a power of two"):
        generate_classes(m, torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, dtype=torch.long), method="triton")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_or_the_interpreter_triton_is_refused(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    m = _model()
    with pytest.raises(ValueError, match="needs triton and a CUDA device"):
        generate_classes(m, torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, dtype=torch.long), method="triton")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("precision,tolerance,warps", [("ieee", 1e-3, 4), ("tf32", 0.1, 4), ("bf16", 0.5, 4),
                                                       ("bf16", 0.5, 2)])
def test_cuda_kernel_logits_match_the_reference(precision, tolerance, warps):
    from vqspeech.generation.triton_backend import KernelShape, generate_triton

    m = _model().cuda()
    codes = torch.randint(0, 16, (40, 8)).cuda()  # 3 programs, the last one partly masked
    spk = (torch.arange(40) % 3).cuda()
    T = 8 * m.hop
    teacher = torch.randint(0, 256, (40, T)).cuda()
    opts = SamplingOptions(seed=2)
    torch.backends.cuda.matmul.allow_tf32 = False
    _, ref = generate_classes(m, codes, spk, T, opts, "reference", teacher=teacher, return_logits=True)
    out, logits = generate_triton(m, codes, spk, T, opts.uniforms(40, T), opts, teacher=teacher,
                                  return_logits=True, precision=precision, shape=KernelShape(num_warps=warps))
    assert (logits - ref).abs().max().item() < tolerance
    if precision == "ieee":  # free-running: identical until a near-tie draw flips (see the module docstring)
        free, _ = generate_triton(m, codes, spk, T, opts.uniforms(40, T), opts, return_logits=True, precision="ieee")
        ref = generate_classes(m, codes, spk, T, opts, "reference")
        first_flip = [(row != r).nonzero()[0].item() if (row != r).any() else T for row, r in zip(free, ref)]
        assert sorted(first_flip)[len(first_flip) // 2] >= T // 4, first_flip


def test_interpreted_kernel_serves_the_wavenet_vocoder(interpret):
    """A vocoder's "codes" are (B, F, n_mels) frames: the kernel takes them through the same
    frame conditioning and gives the reference's samples."""
    from vqspeech.wavenet_vocoder import WaveNetVocoder, vocoder_config_from_dict

    cfg = vocoder_config_from_dict({"features": {"n_mels": 12, "n_fft": 128, "frame_hop": 32},
                                    "decoder_conf": {"layers": 3, "dilation_cycle": 3, "residual_channels": 16,
                                                     "gate_channels": 16, "skip_channels": 16, "speaker_dim": 4,
                                                     "cond_channels": 8}})
    torch.manual_seed(0)
    voc = WaveNetVocoder(cfg, 2).eval()
    for p in voc.decoder.parameters():
        p.data.mul_(3.0)
    frames, spk = torch.randn(2, 3, 12) - 4.0, torch.tensor([0, 1])
    ref = generate_classes(voc, frames, spk, 96, SamplingOptions(seed=1), "reference")
    out = generate_classes(voc, frames, spk, 96, SamplingOptions(seed=1), "triton")
    assert torch.equal(ref, out)


def test_method_errors_say_what_is_missing(monkeypatch):
    """--method triton: without triton, on a CUDA device the error names the package; on the CPU
    without the interpreter, the device."""
    from vqspeech.generation.registry import choose_method as default_method
    from vqspeech.errors import UserError
    from vqspeech.generation import triton_backend

    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(UserError, match=r"^--method triton needs --device cuda$"):
        default_method("triton", torch.device("cpu"))
    monkeypatch.setattr(triton_backend, "unavailable_reason", lambda: "triton is not installed (pip install x)")
    with pytest.raises(UserError, match=r"^--method triton: triton is not installed \(pip install x\)$"):
        default_method("triton", torch.device("cuda"))
