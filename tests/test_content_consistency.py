"""The content-consistency loss: what it compares, which parameters it trains, how the spectral model
weighs it, and that the decoder can lower it; and the log-mel entry point of the encoder it uses."""

import pytest
import torch
import torch.nn.functional as F

from vqspeech.config import config_from_dict
from vqspeech.errors import ConfigError
from vqspeech.models import build_model
from vqspeech.models.content_consistency import content_consistency_loss, to_encoder_rate
from vqspeech.models.spectral import log_mel_frames

# A log-mel encoder (20 bands every 32 samples, hop 64) and a 20-band mel decoder every 128 samples.
_CFG = {
    "encoder_conf": {"input": "mel", "channels": 8, "kernel_sizes": [3, 3], "strides": [1, 2], "latent_dim": 4,
                     "mel_bins": 20, "mel_n_fft": 128, "mel_hop": 32, "instance_norm": True},
    "quantizer_conf": {"num_codes": 8, "kmeans_init": False, "dead_code_restart": False},
    "decoder": "spectral",
    "decoder_conf": {"n_mels": 20, "n_fft": 256, "frame_hop": 128, "channels": 16, "layers": 2, "speaker_dim": 4,
                     "content_consistency_weight": 0.5},
    "train_conf": {"batch_size": 2, "segment_samples": 2048},
}


def _model(seed=0, **decoder):
    cfg = {k: dict(v) if isinstance(v, dict) else v for k, v in _CFG.items()}
    cfg["decoder_conf"].update(decoder)
    torch.manual_seed(seed)
    return build_model(config_from_dict(cfg), 3)


def test_the_encoder_reads_log_mel_frames_as_it_reads_the_waveform():
    enc = _model().encoder.eval()
    wav = 0.1 * torch.randn(2, 64 * 20)
    log_mel = log_mel_frames(wav, enc.mel_fbank, 128, 32, 1e-5)
    assert torch.allclose(enc(wav), enc(None, log_mel=log_mel), atol=1e-6)
    waveform_encoder = build_model(config_from_dict({"decoder": "spectral"}), 1).encoder
    with pytest.raises(ValueError, match="input: mel"):
        waveform_encoder(None, log_mel=log_mel)


def test_frames_are_interpolated_to_the_encoder_rate():
    x = torch.tensor([[[0.0, 4.0, 8.0]]])
    up = to_encoder_rate(x, 4)
    assert up.shape == (1, 1, 12)
    # linear interpolation between frame centres (align_corners=False), edges held
    assert torch.allclose(up[0, 0, :6], torch.tensor([0.0, 0.0, 0.5, 1.5, 2.5, 3.5]))
    assert torch.allclose(up[0, 0, -2:], torch.tensor([8.0, 8.0]))
    assert to_encoder_rate(x, 1) is x


def test_the_loss_compares_the_two_readings_and_trains_the_frames_only():
    enc = _model().encoder
    real = torch.randn(2, 20, 8) - 3
    converted = (real + 0.5 * torch.randn(2, 20, 8)).requires_grad_(True)
    loss = content_consistency_loss(enc, real, converted, 4)
    with torch.no_grad():
        by_hand = F.mse_loss(enc(None, log_mel=to_encoder_rate(converted, 4)), enc(None, log_mel=to_encoder_rate(real, 4)))
    assert torch.isclose(loss, by_hand, atol=1e-7) and loss > 0
    loss.backward()
    assert converted.grad is not None and converted.grad.abs().sum() > 0
    assert all(p.grad is None for p in enc.parameters())          # the encoder is not trained by it
    assert float(content_consistency_loss(enc, real, real.clone(), 4)) == 0.0


def test_the_spectral_model_weighs_the_loss_and_only_the_decoder_learns_from_it():
    m = _model()
    wav, spk = 0.1 * torch.randn(2, 2048), torch.tensor([0, 2])
    out = m(wav, spk)
    c = out["content_consistency_loss"]
    assert c > 0
    assert torch.isclose(out["loss"], out["recon_loss"] + out["vq_loss"] + out["adversary_loss"] + 0.5 * c, atol=1e-6)
    c.backward()
    # the term trains the decoder and the speaker vectors that converted the crops, never the encoder
    # (frozen reader, and the conversions are decoded from detached codes)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.decoder.parameters())
    assert m.speakers.weight.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in m.encoder.parameters())
    off = _model(content_consistency_weight=0.0)(wav, spk)
    assert "content_consistency_loss" not in off


def test_the_codes_target_is_the_cross_entropy_against_the_true_readings_nearest_codes():
    from vqspeech.models.quantizer import squared_distances

    enc = _model().encoder
    torch.manual_seed(5)
    book = torch.randn(8, 4)
    real = torch.randn(2, 20, 8) - 3
    converted = (real + 0.3 * torch.randn(2, 20, 8)).requires_grad_(True)
    loss = content_consistency_loss(enc, real, converted, 4, book)
    with torch.no_grad():
        zr = enc(None, log_mel=to_encoder_rate(real, 4)).transpose(1, 2)        # (2, F, 4)
        zc = enc(None, log_mel=to_encoder_rate(converted, 4)).transpose(1, 2)
    nearest = ((zr[:, :, None] - book) ** 2).sum(-1).argmin(-1)                  # (2, F)
    logp = torch.log_softmax(-((zc[:, :, None] - book) ** 2).sum(-1), -1)
    by_hand = -logp.gather(-1, nearest[..., None]).mean()
    assert torch.isclose(loss, by_hand, atol=1e-5)
    loss.backward()
    assert converted.grad.abs().sum() > 0 and all(p.grad is None for p in enc.parameters())
    # a reading that sits on its own code is scored better than one between codes
    on_code = book[squared_distances(zr, book).argmin(-1)]                        # (2, F, 4) the picked codes
    assert float(F.cross_entropy(-squared_distances(on_code, book).flatten(0, 1), nearest.flatten())) < float(by_hand)
    m = _model(content_consistency_target="codes")
    out = m(0.1 * torch.randn(2, 2048), torch.tensor([0, 1]))
    assert out["content_consistency_loss"] > 0


def test_training_the_decoder_on_the_loss_alone_lowers_it():
    m = _model(seed=3)
    wav, spk = 0.1 * torch.randn(4, 2048), torch.tensor([0, 1, 2, 0])
    opt = torch.optim.Adam(m.decoder.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        torch.manual_seed(0)
        c = m(wav, spk)["content_consistency_loss"]
        opt.zero_grad()
        c.backward()
        opt.step()
        losses.append(c.item())
    assert losses[-1] < 0.5 * losses[0]


def test_config_errors_name_the_key():
    base = {k: dict(v) if isinstance(v, dict) else v for k, v in _CFG.items()}
    for change, match in [
        ({"encoder_conf": {**base["encoder_conf"], "input": "waveform"}}, "needs encoder_conf.input: mel"),
        ({"decoder_conf": {**base["decoder_conf"], "n_mels": 30}}, r"n_mels \(30\) = encoder_conf.mel_bins \(20\)"),
        ({"decoder_conf": {**base["decoder_conf"], "frame_hop": 16}}, "a multiple of encoder_conf.mel_hop"),
        ({"decoder_conf": {**base["decoder_conf"], "content_consistency_weight": -1.0}}, "must be >= 0"),
        ({"decoder_conf": {**base["decoder_conf"], "content_consistency_target": "phones"}}, "latents or codes"),
    ]:
        with pytest.raises(ConfigError, match=match):
            config_from_dict({**base, **change})
