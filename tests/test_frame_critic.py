"""The adversarial frame loss: which parameters each term trains, what it does to blurred frames,
and how the spectral model weighs it."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from helpers import tiny_config  # noqa: E402

from vqspeech.config import config_from_dict  # noqa: E402
from vqspeech.errors import ConfigError  # noqa: E402
from vqspeech.models import build_model  # noqa: E402
from vqspeech.models.frame_critic import FrameCritic, adversarial_losses  # noqa: E402


def test_the_critic_loss_trains_the_critic_only_and_the_decoder_losses_train_the_frames_only():
    torch.manual_seed(0)
    critic = FrameCritic(8)
    real = torch.randn(2, 16, 12)
    fake = torch.randn(2, 16, 12, requires_grad=True)
    out = adversarial_losses(critic, real, fake)
    out["critic_loss"].backward(retain_graph=True)
    assert fake.grad is None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in critic.parameters())
    critic.zero_grad(set_to_none=True)
    (out["gan_loss"] + out["feature_matching_loss"]).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in critic.parameters())


def test_the_losses_equal_the_least_squares_and_feature_matching_definitions():
    torch.manual_seed(1)
    critic = FrameCritic(4)
    real, fake = torch.randn(3, 16, 10), torch.randn(3, 16, 10)
    out = adversarial_losses(critic, real, fake)
    fr, sr = critic(real)
    ff, sf = critic(fake)
    assert torch.isclose(out["critic_loss"], ((sr - 1) ** 2).mean() + (sf ** 2).mean(), atol=1e-6)
    assert torch.isclose(out["gan_loss"], ((sf - 1) ** 2).mean(), atol=1e-6)
    by_hand = sum((a - b).abs().mean() for a, b in zip(ff, fr)) / len(ff)
    assert torch.isclose(out["feature_matching_loss"], by_hand, atol=1e-6)
    assert len(ff) == 4 and sf.shape == (3, 1, 2, 5)   # 16 bands / 8, 10 frames / 2
    # unpaired frames (conversions: no real counterpart) join the critic and GAN terms only
    unpaired = torch.randn(2, 16, 14, requires_grad=True)
    both = adversarial_losses(critic, real, fake, unpaired)
    su = critic(unpaired)[1]
    assert torch.isclose(both["critic_loss"], ((sr - 1) ** 2).mean() + ((sf ** 2).mean() + (su ** 2).mean()) / 2,
                         atol=1e-6)
    assert torch.isclose(both["gan_loss"], (((sf - 1) ** 2).mean() + ((su - 1) ** 2).mean()) / 2, atol=1e-6)
    assert torch.isclose(both["feature_matching_loss"], out["feature_matching_loss"], atol=1e-6)
    both["gan_loss"].backward()
    assert unpaired.grad is not None and unpaired.grad.abs().sum() > 0


def test_the_critic_judges_in_two_batches_what_it_judged_in_five_calls():
    torch.manual_seed(2)
    critic = FrameCritic(4)
    calls = []
    critic.register_forward_hook(lambda mod, args, out: calls.append(out[1].shape[0]))
    real = torch.randn(3, 16, 10)
    results = {}
    for one_batch in (True, False):
        fake, unpaired = (torch.randn(3, 16, 10, generator=torch.Generator().manual_seed(s)).requires_grad_()
                          for s in (3, 4))
        critic.zero_grad(set_to_none=True)
        calls.clear()
        out = adversarial_losses(critic, real, fake, unpaired, one_batch=one_batch)
        sum(out.values()).backward()
        results[one_batch] = (out, fake.grad, unpaired.grad, [p.grad.clone() for p in critic.parameters()], calls[:])
    (batched, *batched_grads, batched_calls), (apart, *apart_grads, apart_calls) = results[True], results[False]
    assert batched_calls == [9, 6] and apart_calls == [3] * 5
    for k in ("critic_loss", "gan_loss", "feature_matching_loss"):
        assert batched[k].item() == pytest.approx(apart[k].item(), rel=1e-6), k
    torch.testing.assert_close(batched_grads[:2], apart_grads[:2])
    torch.testing.assert_close(batched_grads[2], apart_grads[2])
    # frames of another length cannot share a batch: one call each, the same numbers
    calls.clear()
    uneven = adversarial_losses(critic, real, real.clone(), torch.randn(2, 16, 14))
    assert calls == [3, 3, 2, 3, 2] and uneven["feature_matching_loss"].item() == pytest.approx(0.0, abs=1e-7)


def test_against_a_critic_a_blurred_prediction_regains_the_detail_that_an_l1_average_removes():
    """Real 'frames' are sharp: each batch shows a bright band at one of two places. The L1-optimal
    single prediction is flat (both halves at the median); trained against the critic alone, a
    learned prediction that starts flat moves away from flat towards one of the real patterns."""
    torch.manual_seed(0)
    bins, frames = 16, 8
    critic = FrameCritic(8)
    fake = torch.zeros(1, bins, frames, requires_grad=True)
    opt = torch.optim.Adam([*critic.parameters(), fake], lr=1e-2, betas=(0.5, 0.9))

    def real_batch():
        x = torch.full((8, bins, frames), -2.0)
        top = torch.rand(8) < 0.5
        x[top, : bins // 2] = 2.0
        x[~top, bins // 2:] = 2.0
        return x

    for _ in range(500):
        out = adversarial_losses(critic, real_batch(), fake.expand(8, -1, -1))
        opt.zero_grad()
        (out["critic_loss"] + out["gan_loss"] + 2 * out["feature_matching_loss"]).backward()
        opt.step()
    halves = fake.detach()[0, : bins // 2].mean(), fake.detach()[0, bins // 2:].mean()
    # from 0 and 0: one half brighter than the other by more than a third of the real contrast
    # of 4 (seeds 0-2 reach 2.7-3.5 here; an L1 loss would keep the flat median, 0)
    assert abs(float(halves[0] - halves[1])) > 1.5


def _tiny_spectral(gan_weight, **decoder):
    cfg = tiny_config().to_dict()
    cfg["decoder"] = "spectral"
    cfg["decoder_conf"] = {"n_fft": 256, "frame_hop": 64, "channels": 32, "layers": 2, "speaker_dim": 8,
                           "gan_weight": gan_weight, "gan_critic_channels": 4, **decoder}
    return config_from_dict(cfg)


def test_the_spectral_model_weighs_the_gan_terms_into_its_loss_and_builds_no_critic_when_off():
    torch.manual_seed(0)
    m = build_model(_tiny_spectral(0.5), 3)
    wav, spk = 0.1 * torch.randn(2, 1024), torch.tensor([0, 2])
    out = m(wav, spk)
    expected = (out["recon_loss"] + out["vq_loss"] + 0.5 * (out["gan_loss"] + 2 * out["feature_matching_loss"])
                + out["critic_loss"])
    assert torch.isclose(out["loss"], expected, atol=1e-6)
    assert any(k.startswith("critic.") for k in m.state_dict())
    off = build_model(_tiny_spectral(0.0), 3)
    assert off.critic is None and "gan_loss" not in off(wav, spk)
    with pytest.raises(ConfigError, match="gan_weight"):
        _tiny_spectral(-1.0)


def test_gan_on_conversions_judges_the_codes_decoded_with_the_rolled_speakers():
    torch.manual_seed(0)
    m = build_model(_tiny_spectral(0.5, gan_on_conversions=True), 3).eval()   # eval: no jitter
    wav, spk = 0.1 * torch.randn(3, 1024), torch.tensor([0, 2, 1])
    with torch.no_grad():
        out = m(wav, spk)
        z_q, g = m.encode(wav)["z_q"], m.speaker_vectors(spk)
        pred = m.decoder(z_q, g)
        n = min(pred.shape[-1], out["targets"].shape[-1])
        by_hand = adversarial_losses(m.critic, out["targets"][..., :n], pred[..., :n], m.decoder(z_q, g[[2, 0, 1]]))
    for k in ("gan_loss", "critic_loss", "feature_matching_loss"):
        assert torch.isclose(out[k], by_hand[k], atol=1e-6), k
    with pytest.raises(ConfigError, match="gan_on_conversions: needs gan_weight > 0"):
        _tiny_spectral(0.0, gan_on_conversions=True)
