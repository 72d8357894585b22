"""The spectral decoder path: STFT target, Griffin-Lim, model options, training and conversion."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from helpers import tiny_config  # noqa: E402

from vqspeech.audio import load_audio  # noqa: E402
from vqspeech.config import config_from_dict  # noqa: E402
from vqspeech.errors import ConfigError  # noqa: E402
from vqspeech.models import SpectralVQVAE, build_model  # noqa: E402
from vqspeech.models.spectral import log_magnitude  # noqa: E402
from vqspeech.models.vqvae import time_jitter  # noqa: E402
from vqspeech.vocoders import griffin_lim  # noqa: E402


def tiny_spectral(**train):
    cfg = tiny_config(**train).to_dict()
    cfg["decoder"] = "spectral"
    cfg["decoder_conf"] = {"n_fft": 256, "frame_hop": 64, "channels": 32, "layers": 2, "speaker_dim": 8}
    return config_from_dict(cfg)


def _speech(tiny_corpus, seconds=1.0):
    wav_scp = (tiny_corpus / "data" / "test" / "wav.scp").read_text().splitlines()[0].split()[1]
    return load_audio(wav_scp, 16000)[: int(16000 * seconds)]


def _convergence(wav, mag, n_fft, hop):
    """Spectral convergence ||S - |STFT(wav)||| / ||S||."""
    est = log_magnitude(torch.as_tensor(wav)[None].float(), n_fft, hop, 1e-12).exp()
    n = min(est.shape[-1], mag.shape[-1])
    return float((est[..., :n] - mag[..., :n]).norm() / mag[..., :n].norm())


def test_mel_filterbank_matches_librosa_and_inverts():
    librosa = pytest.importorskip("librosa")
    from vqspeech.models.mel import mel_filterbank, mel_to_linear

    fb = mel_filterbank(16000, 1024, 80)
    np.testing.assert_allclose(fb.numpy(), librosa.filters.mel(sr=16000, n_fft=1024, n_mels=80), atol=1e-7)
    # the non-negative inverse reproduces the mel values of a smooth spectrum and stays >= 0
    lin = torch.rand(1, 513, 20).cumsum(1) / 100
    back = mel_to_linear(fb @ lin, fb, iterations=200)
    assert (back >= 0).all()
    rel = ((fb @ back) - (fb @ lin)).norm() / (fb @ lin).norm()
    assert rel < 0.02, rel


def test_log_magnitude_matches_librosa(tiny_corpus):
    librosa = pytest.importorskip("librosa")
    wav = _speech(tiny_corpus, 0.512)
    ours = log_magnitude(torch.from_numpy(wav)[None], 1024, 256, 1e-5)[0].numpy()
    ref = np.log(np.maximum(np.abs(librosa.stft(wav, n_fft=1024, hop_length=256, window="hann", center=True,
                                                pad_mode="reflect")), 1e-5))
    assert ours.shape == (513, len(wav) // 256)
    np.testing.assert_allclose(ours, ref[:, : ours.shape[1]], atol=2e-3)


def test_griffin_lim_recovers_speech_and_is_seeded(tiny_corpus):
    wav = _speech(tiny_corpus)
    mag = log_magnitude(torch.from_numpy(wav)[None], 1024, 256, 1e-12).exp()
    conv = {it: _convergence(griffin_lim(mag, 1024, 256, iterations=it)[0].numpy(), mag, 1024, 256)
            for it in (0, 8, 32)}
    assert conv[32] < conv[8] < conv[0] and conv[32] < 0.25, conv
    a, b = griffin_lim(mag, 1024, 256, 4, seed=3), griffin_lim(mag, 1024, 256, 4, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, griffin_lim(mag, 1024, 256, 4, seed=4))
    assert a.shape == (1, mag.shape[-1] * 256)
    # an independent implementation on the same magnitude reaches a similar convergence
    librosa = pytest.importorskip("librosa")
    padded = torch.cat([mag[0], mag[0, :, -1:]], dim=-1).numpy()  # our layout: one frame past the end
    ref = librosa.griffinlim(padded, n_iter=32, hop_length=256, n_fft=1024, window="hann", momentum=0.99,
                             random_state=0)
    conv_ref = _convergence(ref, mag, 1024, 256)
    assert abs(conv[32] - conv_ref) < 0.05, (conv[32], conv_ref)


@pytest.mark.parametrize("frame_hop,features,bins", [(32, "mel", 80), (64, "linear", 129), (128, "mel", 80)])
def test_spectral_model_shapes_for_every_frame_rate(frame_hop, features, bins):
    cfg = tiny_spectral().to_dict()
    cfg["decoder_conf"].update(frame_hop=frame_hop, features=features)
    m = build_model(config_from_dict(cfg), 3)
    assert isinstance(m, SpectralVQVAE) and m.hop == 16
    wav = 0.1 * torch.randn(2, 1024)
    out = m(wav, torch.tensor([0, 2]))
    assert out["frames"].shape == out["targets"].shape == (2, bins, 1024 // frame_hop)
    assert m.linear_magnitude(out["frames"]).shape == (2, 129, 1024 // frame_hop)
    out["loss"].backward()
    assert m.encoder.convs[0].weight.grad.abs().sum() > 0  # the straight-through path reaches the encoder


def test_config_checks():
    with pytest.raises(ConfigError, match="decoder: unknown 'mel'"):
        config_from_dict({"decoder": "mel"})
    with pytest.raises(ConfigError, match="frame_hop \\(96\\) must be a multiple or a divisor"):
        config_from_dict({"decoder": "spectral", "decoder_conf": {"frame_hop": 96}})
    with pytest.raises(ConfigError, match="decoder_conf: unknown key layerz"):
        config_from_dict({"decoder": "spectral", "decoder_conf": {"layerz": 3}})
    with pytest.raises(ConfigError, match="jitter"):
        config_from_dict({"quantizer_conf": {"jitter": 1.5}})
    assert config_from_dict({"decoder": "spectral"}).sample_multiple == 256


def test_encoder_residual_layers_widen_the_context_not_the_hop():
    base = config_from_dict({"encoder_conf": {"channels": 8, "latent_dim": 4}})
    wide = config_from_dict({"encoder_conf": {"channels": 8, "latent_dim": 4, "residual_layers": 4}})
    mb, mw = build_model(base, 1), build_model(wide, 1)
    x = torch.randn(1, 64 * 50)
    assert mb.encoder(x).shape == mw.encoder(x).shape == (1, 4, 50)
    assert mb.encoder.receptive_field == 190  # the paper's encoder: 190 samples per code
    assert mw.encoder.receptive_field == 190 + 2 * (1 + 2 + 4 + 8) * 64
    # measured, not only computed: which input samples move code 25 at all
    def moved(enc, offset):
        y = x.clone()
        y[0, 25 * 64 + offset] += 10.0
        with torch.no_grad():
            return float((enc(x)[..., 25] - enc(y)[..., 25]).abs().max()) > 0

    assert moved(mb.encoder, 0) and moved(mw.encoder, 0)
    assert not moved(mb.encoder, 64 * 10) and moved(mw.encoder, 64 * 10)  # 10 codes away
    assert not moved(mw.encoder, 64 * 24)  # beyond the wide field too


def test_mel_input_encoder_hop_and_measured_receptive_field():
    cfg = config_from_dict({"encoder_conf": {"input": "mel", "channels": 8, "kernel_sizes": [3, 3],
                                             "strides": [1, 2], "latent_dim": 4, "mel_bins": 20,
                                             "mel_n_fft": 128, "mel_hop": 32}})
    assert cfg.encoder_conf.hop == 64
    torch.manual_seed(0)
    m = build_model(cfg, 1)
    enc = m.encoder
    assert enc.reads_mel and enc.receptive_field == 128 + (5 - 1) * 32  # 5 mel frames 32 apart, 128-sample windows
    x = 0.1 * torch.randn(1, 64 * 40)
    assert enc(x).shape == (1, 4, 40)

    def moved(offset):
        y = x.clone()
        y[0, 20 * 64 + offset] += 1.0
        with torch.no_grad():
            return float((enc(x)[..., 20] - enc(y)[..., 20]).abs().max()) > 0

    # code 20 (samples 1280..1343) reads mel frames 39..43, whose windows span samples 1184..1439
    assert moved(0) and moved(-80) and moved(140) and not moved(-130) and not moved(200)
    # the model feeds it the plain waveform (mu-law companding is for the waveform encoder only)
    with torch.no_grad():
        assert torch.equal(m.encode(x)["z"], enc(x))
    with pytest.raises(ConfigError, match="encoder_conf.input"):
        config_from_dict({"encoder_conf": {"input": "spectrogram"}})
    with pytest.raises(ConfigError, match="mel_n_fft"):
        config_from_dict({"encoder_conf": {"input": "mel", "mel_n_fft": 500}})


def test_instance_norm_removes_what_is_constant_over_the_utterance():
    cfg = config_from_dict({"encoder_conf": {"channels": 8, "latent_dim": 4, "instance_norm": True}})
    torch.manual_seed(0)
    enc = build_model(cfg, 1).encoder.double()  # float64: the untrained latents vary little
    x = 0.3 * torch.randn(2, 64 * 40, dtype=torch.float64)
    with torch.no_grad():
        z = enc(x)
        enc.instance_norm = False
        z_raw = enc(x)
    assert z.shape == (2, 4, 40)
    assert torch.allclose(z.mean(-1), torch.zeros(2, 4, dtype=torch.float64), atol=1e-6)
    var = z_raw.var(-1, unbiased=False)
    assert torch.allclose(z.std(-1, unbiased=False), (var / (var + 1e-5)).sqrt(), atol=1e-4)  # 1 but for eps
    # torch's own instance norm agrees; a per-channel shift and scale of the raw latents cancels
    assert torch.allclose(z, torch.nn.functional.instance_norm(z_raw, eps=1e-5), atol=1e-5)
    shifted = 3.0 * z_raw + torch.randn(2, 4, 1, dtype=torch.float64)
    assert torch.allclose(torch.nn.functional.instance_norm(shifted, eps=1e-5 * 9), z, atol=1e-4)
    assert not config_from_dict({}).encoder_conf.instance_norm  # off by default (the paper's encoder)


def test_input_perturbation_warps_the_encoders_view_in_training_only():
    from vqspeech.models.perturb import random_tilts, random_warp_factors, warp_frequencies

    # a 1 kHz tone sits in bin 32 of a 512-point STFT at 16 kHz; factors 2 and 0.5 move it an octave
    t = torch.arange(8192) / 16000
    mag = log_magnitude(torch.sin(2 * torch.pi * 1000 * t)[None], 512, 64, 1e-12).exp()
    assert int(mag[0, :, 10].argmax()) == 32
    out = warp_frequencies(mag.repeat(3, 1, 1), torch.tensor([1.0, 2.0, 0.5]))
    assert out[:, :, 10].argmax(1).tolist() == [32, 64, 16]
    assert torch.allclose(out[0], mag[0])
    assert float(out[2, 129:].abs().max()) == 0.0  # read from above the top bin: silence
    g = torch.Generator().manual_seed(0)
    f = random_warp_factors(20000, 0.25, generator=g)
    assert 0.8 - 1e-6 <= float(f.min()) < 0.81 and 1.24 < float(f.max()) <= 1.25 + 1e-6
    assert abs(float(f.log().mean())) < 0.01  # log-uniform: as many up as down
    tilt = random_tilts(4000, 80, 0.5, generator=g)
    assert tilt.shape == (4000, 80, 1) and 0.5 < float(tilt.std()) < 0.75  # 3 cosines of std 0.5 / sqrt(2) each
    assert float((tilt[:, 1:] - tilt[:, :-1]).abs().mean()) < 0.05  # smooth: neighbouring bands nearly agree

    cfg = config_from_dict({"encoder_conf": {"input": "mel", "channels": 8, "kernel_sizes": [3], "strides": [1],
                                             "latent_dim": 4, "mel_bins": 20, "mel_n_fft": 128, "mel_hop": 32,
                                             "input_warp": 0.3, "input_tilt": 0.5}})
    torch.manual_seed(0)
    enc = build_model(cfg, 1).encoder
    x = 0.1 * torch.randn(2, 32 * 40)
    with torch.no_grad():
        enc.eval()
        assert torch.equal(enc(x), enc(x))  # inference reads the audio as it is
        plain = enc(x)
        enc.train()
        a, b = enc(x), enc(x)
        enc.cfg.input_warp = enc.cfg.input_tilt = 0.0
        assert torch.equal(enc(x), plain)  # without perturbation training and inference agree
    assert not torch.allclose(a, plain, atol=1e-3) and not torch.allclose(a, b, atol=1e-3)
    with pytest.raises(ConfigError, match="need input: mel"):
        config_from_dict({"encoder_conf": {"input_warp": 0.1}})
    with pytest.raises(ConfigError, match="input_warp must be in"):
        config_from_dict({"encoder_conf": {"input": "mel", "input_warp": 1.5}})


def test_time_jitter():
    x = torch.arange(2000.0).view(1, 1, -1).expand(2, 3, -1).contiguous()
    assert torch.equal(time_jitter(x, 0.0), x)
    torch.manual_seed(0)
    y = time_jitter(x, 0.5)
    shift = (y - x)[:, 0, 1:-1]
    assert set(shift.unique().tolist()) == {-1.0, 0.0, 1.0}
    assert torch.equal(y[:, 0], y[:, 2])  # the whole vector moves, not single channels
    assert abs(float((shift != 0).float().mean()) - 0.5) < 0.04
    assert abs(float((shift == -1).float().mean()) - 0.25) < 0.04


def test_spectral_training_learns_and_converts(tiny_corpus, tmp_path):
    from vqspeech.bin.convert_voice import main as convert_main
    from vqspeech.checkpoint import load_model
    from vqspeech.conversion import convert
    from vqspeech.train import train

    cfg = tiny_spectral(max_steps=120, batch_size=4, segment_samples=2048, lr=3e-3, log_every=10,
                        val_every=1000, checkpoint_every=120, audio_samples=1)
    res = train(cfg, tiny_corpus / "data" / "train", tiny_corpus / "data" / "dev", tmp_path / "exp", progress=False)
    lm = load_model(tmp_path / "exp" / "checkpoint.pt")
    assert lm.model.decoder_kind == "spectral" and res.step == 120
    first = _recon_at(tmp_path / "exp", 10)
    assert res.final["loss/recon"] < 0.75 * first, (first, res.final["loss/recon"])
    wav = _speech(tiny_corpus)
    out = convert(lm.model, wav, lm.speakers.index("slt"), 16000)
    assert out.wav.shape == wav.shape and np.isfinite(out.wav).all() and np.abs(out.wav).max() > 1e-3
    # the decoded frames are closer to the input's than the input's mean frame is: the model reconstructs
    m = lm.model
    target = m.target_frames(torch.from_numpy(wav[: len(wav) // 64 * 64])[None])
    per_frame = m.cfg.decoder_conf.frame_hop // m.hop
    pred = m.frames(out.codes[None, : target.shape[-1] * per_frame], torch.tensor([lm.speakers.index("slt")]))
    assert float((pred - target).abs().mean()) < float((target - target.mean()).abs().mean())
    import soundfile as sf

    sf.write(tmp_path / "in.wav", wav, 16000)
    code = convert_main(["--model", str(tmp_path / "exp" / "checkpoint.pt"), "--input", str(tmp_path / "in.wav"),
                         "--target-speaker", "awb", "--output", str(tmp_path / "out.wav"), "--vocoder", "griffin-lim"])
    assert code == 0 and sf.info(str(tmp_path / "out.wav")).frames == len(wav)


def _recon_at(exp, step):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(exp / "tensorboard"))
    acc.Reload()
    return next(e.value for e in acc.Scalars("loss/recon") if e.step == step)


def test_decoder_dropout_only_in_training():
    cfg = tiny_spectral().to_dict()
    cfg["decoder_conf"]["dropout"] = 0.5
    m = build_model(config_from_dict(cfg), 2)
    codes, spk = torch.randint(0, 16, (1, 64)), torch.tensor([1])
    m.eval()
    assert torch.equal(m.frames(codes, spk), m.frames(codes, spk))
    m.train()
    assert not torch.equal(m.frames(codes, spk), m.frames(codes, spk))
    with pytest.raises(ConfigError, match="dropout"):
        config_from_dict({"decoder": "spectral", "decoder_conf": {"dropout": 1.0}})


def test_speaker_adversary_reverses_the_gradient():
    cfg = tiny_spectral().to_dict()
    cfg["encoder_conf"]["speaker_adversary_weight"] = 0.5
    m = build_model(config_from_dict(cfg), 3)
    z = torch.randn(2, 8, 10, requires_grad=True)
    spk = torch.tensor([0, 2])
    loss = m.adversary.loss(z, spk)
    loss.backward()
    g_reversed = z.grad.clone()
    # the same classifier without the reversal: the encoder-side gradient is -0.5 times it
    z2 = z.detach().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(m.adversary.net(z2), spk[:, None].expand(-1, 10)).backward()
    assert torch.allclose(g_reversed, -0.5 * z2.grad, atol=1e-6)
    out = m(0.1 * torch.randn(2, 1024), spk)
    assert out["adversary_loss"] > 0 and torch.isclose(out["loss"], out["recon_loss"] + out["vq_loss"] + out["adversary_loss"])
    assert build_model(tiny_spectral(), 3).adversary is None


def test_code_histogram_adversary_reads_soft_histograms_and_reverses_the_gradient():
    from vqspeech.models.vqvae import CodeHistogramAdversary

    cfg = tiny_spectral().to_dict()
    cfg["encoder_conf"].update(speaker_adversary_weight=0.5, speaker_adversary_input="code_histogram")
    m = build_model(config_from_dict(cfg), 3)
    assert isinstance(m.adversary, CodeHistogramAdversary)
    K, D = m.quantizer.codebook.shape
    book = torch.randn(K, D)
    # frames sitting on codes 1 and 3 (far apart at temperature 1e-3): the histogram counts them
    z = torch.stack([book[[1, 1, 3, 1]].t(), book[[3, 3, 3, 3]].t()])    # (2, D, 4)
    adv = CodeHistogramAdversary(K, 3, 0.5, temperature=1e-3)
    h = adv.histograms(z, book)
    expect = torch.zeros(2, K)
    expect[0, 1], expect[0, 3], expect[1, 3] = 0.75, 0.25, 1.0
    assert torch.allclose(h, expect, atol=1e-4)
    # at temperature 1 it is the mean softmax of -squared distances, computed by hand
    zt = torch.randn(2, D, 5, requires_grad=True)
    d = ((zt.detach().transpose(1, 2)[:, :, None, :] - book[None, None]) ** 2).sum(-1)
    assert torch.allclose(m.adversary.histograms(zt.detach(), book), torch.softmax(-d, -1).mean(1), atol=1e-5)
    # the encoder receives -0.5 x the classifier's gradient
    spk = torch.tensor([0, 2])
    m.adversary.loss(zt, spk, book).backward()
    z2 = zt.detach().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(m.adversary.net(torch.log(m.adversary.histograms(z2, book) + 1e-4)), spk).backward()
    assert torch.allclose(zt.grad, -0.5 * z2.grad, atol=1e-6)
    out = m(0.1 * torch.randn(2, 1024), spk)
    assert out["adversary_loss"] > 0
    with pytest.raises(ConfigError, match="speaker_adversary_input"):
        config_from_dict({"encoder_conf": {"speaker_adversary_input": "codes"}})


def test_hard_code_histogram_adversary_counts_the_picked_codes_with_the_soft_gradient():
    from vqspeech.models.vqvae import CodeHistogramAdversary

    cfg = tiny_spectral().to_dict()
    cfg["encoder_conf"].update(speaker_adversary_weight=0.5, speaker_adversary_input="hard_code_histogram")
    m = build_model(config_from_dict(cfg), 3)
    assert isinstance(m.adversary, CodeHistogramAdversary) and m.adversary.hard
    torch.manual_seed(4)
    K, D = m.quantizer.codebook.shape
    book = torch.randn(K, D)
    z = torch.randn(2, D, 6, requires_grad=True)
    # at temperature 1 the soft histogram is far from one-hot; the hard one counts the nearest codes exactly
    nearest = ((z.detach().transpose(1, 2)[:, :, None, :] - book[None, None]) ** 2).sum(-1).argmin(-1)  # (2, 6)
    expect = torch.stack([torch.bincount(row, minlength=K).float() / 6 for row in nearest])
    hard = m.adversary.histograms(z, book)
    assert torch.allclose(hard, expect, atol=1e-6)
    soft_adv = CodeHistogramAdversary(K, 3, 0.5)
    soft_adv.load_state_dict(m.adversary.state_dict())
    assert not torch.allclose(soft_adv.histograms(z.detach(), book), expect, atol=0.05)
    # backward: the soft histogram's gradient (straight-through)
    w = torch.randn(2, K)
    (hard * w).sum().backward()
    z2 = z.detach().clone().requires_grad_(True)
    (soft_adv.histograms(z2, book) * w).sum().backward()
    assert z.grad.abs().sum() > 0 and torch.allclose(z.grad, z2.grad, atol=1e-6)
    out = m(0.1 * torch.randn(2, 1024), torch.tensor([0, 2]))
    assert out["adversary_loss"] > 0


def test_delta_loss_is_the_l1_of_frame_differences_and_weighted_into_the_loss():
    cfg = tiny_spectral().to_dict()
    cfg["decoder_conf"]["delta_weight"] = 2.0
    torch.manual_seed(0)
    m = build_model(config_from_dict(cfg), 3)
    wav, spk = 0.1 * torch.randn(2, 1024), torch.tensor([0, 2])
    out = m(wav, spk)
    p, t = out["frames"].detach(), out["targets"]
    n = min(p.shape[-1], t.shape[-1])
    by_hand = (p[..., 1:n] - p[..., : n - 1] - (t[..., 1:n] - t[..., : n - 1])).abs().mean()
    assert torch.isclose(out["delta_loss"], by_hand, atol=1e-6)
    assert torch.isclose(out["loss"], out["recon_loss"] + 2.0 * out["delta_loss"] + out["vq_loss"], atol=1e-6)
    with pytest.raises(ConfigError, match="delta_weight"):
        config_from_dict({"decoder": "spectral", "decoder_conf": {"delta_weight": -1}})
