"""Parallel supervision (vqspeech.parallel_targets): DTW partners of the same sentence, their
aligned frames for each training crop, the model's masked loss, and the training wiring."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_spectral import tiny_spectral  # noqa: E402

from vqspeech.config import config_from_dict  # noqa: E402
from vqspeech.errors import ConfigError, UserError  # noqa: E402
from vqspeech.kaldi_data_dir import read_data_dir  # noqa: E402
from vqspeech.models import build_model  # noqa: E402
from vqspeech.parallel_targets import ParallelTargets, align, cepstra  # noqa: E402
from vqspeech.training_crops import CropBatches  # noqa: E402


def test_cepstra_drop_loudness_and_remove_each_coefficients_mean():
    rng = np.random.default_rng(0)
    log_mel = rng.standard_normal((20, 30))
    c = cepstra(log_mel, keep=8)
    assert c.shape == (8, 30)
    np.testing.assert_allclose(c.mean(axis=1), 0, atol=1e-12)
    # adding a constant to every band (louder) moves only c0, which is dropped
    np.testing.assert_allclose(cepstra(log_mel + 3.0, keep=8), c, atol=1e-12)


def test_align_maps_each_frame_of_a_slowed_copy_to_its_first_repeat():
    rng = np.random.default_rng(1)
    src = rng.standard_normal((6, 12))
    slow = np.repeat(src, 2, axis=1)  # every frame held twice
    np.testing.assert_array_equal(align(src, slow), 2 * np.arange(12))
    np.testing.assert_array_equal(align(slow, src), np.arange(24) // 2)


def test_crop_start_is_where_the_crop_comes_from(tiny_corpus):
    dd = read_data_dir(tiny_corpus / "data" / "train")
    b = CropBatches(dd, dd.speakers, 16000, 2, 4096, seed=3)
    long_i = max(range(len(b.utts)), key=lambda i: len(b.audio(i)))
    s = b.crop_start(long_i, 7)
    assert s >= 0 and np.array_equal(b.crop(long_i, 7), b.audio(long_i)[s:s + 4096])
    short = CropBatches(dd, dd.speakers, 16000, 2, 10 * len(b.audio(long_i)), seed=3)  # every utterance padded
    s = short.crop_start(0, 5)
    wav, crop = short.audio(0), short.crop(0, 5)
    assert s <= 0 and np.array_equal(crop[-s:-s + len(wav)], wav) and not crop[:-s].any()


@pytest.fixture(scope="module")
def targets(tiny_corpus):
    cfg = tiny_spectral()
    dd = read_data_dir(tiny_corpus / "data" / "train")
    model = build_model(cfg, len(dd.speakers))
    b = CropBatches(dd, dd.speakers, 16000, 4, 4096, seed=0)
    with torch.no_grad():
        pt = ParallelTargets(b, dd.text, lambda w: model.target_frames(torch.from_numpy(w)[None])[0].numpy(),
                             cfg.decoder_conf.frame_hop)
    return pt, dd


def test_partners_read_the_same_sentence_in_another_voice(targets):
    pt, dd = targets
    b = pt.batches
    voices = len(set(b.spk))
    assert pt.coverage == 1.0 and voices >= 2
    for i, partners in enumerate(pt.partners):
        assert len(partners) == voices - 1  # the tiny corpus: every voice reads every sentence
        for j, path in partners:
            assert dd.text[b.utts[j]] == dd.text[b.utts[i]] and b.spk[j] != b.spk[i]
            assert path.shape == (pt.frames[i].shape[1],) and path.min() >= 0
            assert path.max() < pt.frames[j].shape[1] and (np.diff(path) >= 0).all()  # monotonic


def test_dtw_brings_the_partner_closer_than_a_linear_stretch(targets):
    pt, _ = targets
    dtw, linear = [], []
    for i, partners in enumerate(pt.partners):
        j, path = partners[0]
        ci, cj = cepstra(pt.frames[i]), cepstra(pt.frames[j])
        lin = np.round(np.linspace(0, cj.shape[1] - 1, ci.shape[1])).astype(int)
        dtw.append(np.linalg.norm(ci - cj[:, path], axis=0).mean())
        linear.append(np.linalg.norm(ci - cj[:, lin], axis=0).mean())
    assert np.mean(dtw) < 0.85 * np.mean(linear), (np.mean(dtw), np.mean(linear))


def test_draw_gives_the_partners_aligned_frames_for_each_crop(targets):
    pt, _ = targets
    b = pt.batches
    spk, target, mask = pt.draw(3)
    n = b.segment // pt.hop
    assert spk.shape == (4,) and target.shape == (4, pt.frames[0].shape[0], n) and mask.shape == (4, n)
    assert torch.equal(spk, pt.draw(3)[0])  # a pure function of the step
    # with a code hop, the same draw also carries the partners' crops for those very partners
    both = pt.draw(3, 64)
    crops, index = pt.draw_partner_crops(3, 64)
    assert len(both) == 5 and torch.equal(both[0], spk) and torch.equal(both[1], target)
    assert torch.equal(both[3], crops) and torch.equal(both[4], index)
    base = 3 * b.global_batch
    for row, i in enumerate(b.utterance_indices(3)):
        matches = [(j, p) for j, p in pt.partners[i] if b.spk[j] == int(spk[row])]
        assert len(matches) == 1 and int(spk[row]) != b.spk[i]
        j, path = matches[0]
        first = int(round(b.crop_start(i, base + row) / pt.hop))
        for k in range(n):
            src = first + k
            if 0 <= src < len(path):
                assert mask[row, k] == 1.0
                np.testing.assert_array_equal(target[row, :, k].numpy(), pt.frames[j][:, path[src]])
            else:
                assert mask[row, k] == 0.0 and not target[row, :, k].any()


def test_a_pitch_model_draws_its_partners_pitch_aligned_like_their_frames(tiny_corpus, targets):
    pt, dd = targets
    cfg = tiny_spectral().to_dict()
    cfg["decoder_conf"].update(source_pitch=True, parallel_weight=1.0)
    model = build_model(config_from_dict(cfg), len(dd.speakers))
    with torch.no_grad():
        withp = ParallelTargets(pt.batches, dd.text, lambda w: model.target_frames(torch.from_numpy(w)[None])[0].numpy(),
                                pt.hop, pitch_of=lambda w: model.source_pitch(torch.from_numpy(w)[None])[0].numpy())
    spk, target, mask, pitch = withp.draw(3)
    full = withp.draw(3, 64)
    assert len(full) == 6 and torch.equal(full[5], pitch) and torch.equal(full[1], target)
    b = pt.batches
    n = b.segment // pt.hop
    assert pitch.shape == (4, 3, n)
    base = 3 * b.global_batch
    for row, i in enumerate(b.utterance_indices(3)):
        j, path = next((j, p) for j, p in withp.partners[i] if b.spk[j] == int(spk[row]))
        own = withp.pitch[j]
        assert own.shape == (3, len(b.audio(j)) // pt.hop)      # the partner's whole utterance
        first = int(round(b.crop_start(i, base + row) / pt.hop))
        for k in range(n):
            src = first + k
            if 0 <= src < len(path):
                np.testing.assert_array_equal(pitch[row, :, k].numpy(), own[:, path[src]])
                assert pitch[row, 2, k] == 1.0                   # known
            else:
                assert not pitch[row, :, k].any()                # unknown outside the utterance
    # the model decodes its parallel term with that pitch: the loss differs from decoding without it
    wav = torch.from_numpy(np.stack([b.crop(i, base + r) for r, i in enumerate(b.utterance_indices(3))]))
    model.eval()
    torch.manual_seed(0)
    with_pitch = model(wav, torch.tensor([b.spk[i] for i in b.utterance_indices(3)]), parallel=(spk, target, mask, pitch))
    torch.manual_seed(0)
    without = model(wav, torch.tensor([b.spk[i] for i in b.utterance_indices(3)]), parallel=(spk, target, mask))
    assert with_pitch["parallel_loss"] != without["parallel_loss"]
    assert with_pitch["recon_loss"].item() == pytest.approx(without["recon_loss"].item(), rel=1e-6)


def test_utterances_without_a_partner_are_masked_out(targets):
    pt, _ = targets
    saved = pt.partners
    pt.partners = [[] for _ in saved]
    try:
        spk, _, mask = pt.draw(0)
        assert not mask.any()
        assert spk.tolist() == [pt.batches.spk[i] for i in pt.batches.utterance_indices(0)]
    finally:
        pt.partners = saved


def test_partner_crops_put_each_code_on_its_partner_moment(targets):
    """With the partner recording an exact copy (identity DTW map), code c of the crop must land on
    the partner-crop code that holds the very same samples; with a copy slowed 2x by sample
    repetition, on the one that holds them twice as late."""
    pt, _ = targets
    b = pt.batches
    code_hop = 64
    n = b.segment // code_hop
    saved, saved_audio = pt.partners, b.audio
    try:
        # every utterance's partner: itself under another speaker's name, frame map the identity
        pt.partners = [[(i, np.arange(pt.frames[i].shape[1]))] for i in range(len(saved))]
        crops, index = pt.draw_partner_crops(2, code_hop)
        assert crops.shape == (4, b.segment) and index.shape == (4, n)
        assert torch.equal(index, pt.draw_partner_crops(2, code_hop)[1])  # a pure function of the step
        base = 2 * b.global_batch
        checked = 0
        for row, i in enumerate(b.utterance_indices(2)):
            crop = b.crop(i, base + row)
            for c in range(n):
                k = int(index[row, c])
                if k < 0:
                    continue
                np.testing.assert_array_equal(crops[row, k * code_hop:(k + 1) * code_hop].numpy(),
                                              crop[c * code_hop:(c + 1) * code_hop])
                checked += 1
        assert checked > 0.5 * 4 * n
        # a 2x slower partner: each sample said twice, each frame mapped to twice its index
        b.audio = lambda i: np.repeat(saved_audio(i), 2)
        pt.partners = [[(i, 2 * np.arange(pt.frames[i].shape[1]))] for i in range(len(saved))]
        crops, index = pt.draw_partner_crops(2, code_hop)
        for row, i in enumerate(b.utterance_indices(2)):
            a0 = b.crop_start(i, base + row, len(saved_audio(i)))
            ks = index[row].numpy()
            ok = ks >= 0
            assert ok.sum() > n // 4
            # the partner crop's sample at code k is the utterance's sample at code c, said twice as late
            c = int(np.flatnonzero(ok)[0])   # the first aligned code
            s_a = a0 + c * code_hop
            s_b = 2 * pt.hop * int(round(s_a / pt.hop)) + (s_a - pt.hop * int(round(s_a / pt.hop)))
            np.testing.assert_allclose(crops[row, ks[c] * code_hop].item(), np.repeat(saved_audio(i), 2)[s_b],
                                       atol=0)
            assert (np.diff(ks[ok]) >= 1).all() and (np.diff(ks[ok]) <= 3).all()  # 2 codes on per code
            assert abs(np.diff(ks[ok]).mean() - 2) < 0.1
    finally:
        pt.partners, b.audio = saved, saved_audio


def test_partner_crops_of_utterances_without_a_partner_are_masked(targets):
    pt, _ = targets
    saved = pt.partners
    pt.partners = [[] for _ in saved]
    try:
        crops, index = pt.draw_partner_crops(0, 64)
        assert (index == -1).all() and not crops.any()
    finally:
        pt.partners = saved


def _tiny_model_and_wav(encoder_conf=None, **decoder_conf):
    """A tiny spectral model (3 speakers, eval mode, seed 0) with ``encoder_conf`` and ``decoder_conf``
    set, and (2, 2048) noise."""
    cfg = tiny_spectral().to_dict()
    cfg["encoder_conf"].update(encoder_conf or {})
    cfg["decoder_conf"].update(decoder_conf)
    cfg = config_from_dict(cfg)
    torch.manual_seed(0)
    return cfg, build_model(cfg, 3).eval(), torch.rand(2, 2048) * 2 - 1


def test_model_adds_the_weighted_masked_distance_to_the_partners_codes():
    cfg, m, wav = _tiny_model_and_wav(parallel_code_weight=0.25)
    partner_wav = torch.rand(2, 2048) * 2 - 1
    spk = torch.tensor([0, 1])
    n = 2048 // m.hop
    index = torch.arange(n).flip(0).repeat(2, 1)   # code c pairs with partner code n - 1 - c
    index[1, : n // 3] = -1
    par = (spk, torch.zeros(2, cfg.decoder_conf.n_mels, 2048 // 64), torch.zeros(2, 2048 // 64),
           partner_wav, index)
    out = m(wav, spk, parallel=par)
    plain = m(wav, spk)
    # by hand: the partner's codes by brute-force nearest search, then the masked mean squared distance
    with torch.no_grad():
        z = m.encode(wav)["z"]
        zp = m.encode(partner_wav)["z"]
    book = m.quantizer.codebook
    expected, count = 0.0, 0
    for r in range(2):
        for c in range(n):
            k = int(index[r, c])
            if k < 0:
                continue
            code = int(((book - zp[r, :, k]) ** 2).sum(1).argmin())
            expected += float(((z[r, :, c] - book[code]) ** 2).mean())
            count += 1
    expected /= count
    assert out["parallel_code_loss"].item() == pytest.approx(expected, rel=1e-5)
    assert out["loss"].item() == pytest.approx(plain["loss"].item() + 0.25 * expected, rel=1e-5)
    # the gradient reaches the crop's encoder only (the partner side is a constant target)
    m.zero_grad()
    out["parallel_code_loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in m.decoder.parameters())


@pytest.mark.parametrize("form", ["commitment", "contrastive"])
def test_training_with_parallel_code_agreement_brings_partners_together(tiny_corpus, tmp_path, targets, form):
    """The same short training with and without the term (a log-mel encoder with instance norm, as
    the study's models): with it, the crops' encoder outputs end closer to their partners' (by the
    term's own measure, on crops of another draw)."""
    from vqspeech.train import train

    pt, _ = targets
    measured = {}
    for weight in (0.0, 2.0):
        # The tiny model's InfoNCE over 256 partner moments falls more slowly than the distance: at 60
        # steps its ratio was 0.90-0.92 on one machine (passing < 0.85 on another), at 250 0.73-0.81.
        steps = {"commitment": 60, "contrastive": 250}[form]
        cfg = tiny_spectral(max_steps=steps, batch_size=4, segment_samples=2048, lr=3e-3, log_every=10,
                            val_every=1000, checkpoint_every=steps, audio_samples=0).to_dict()
        cfg["encoder_conf"].update(input="mel", mel_hop=16, strides=[1, 1, 1, 1], instance_norm=True)
        cfg["decoder_conf"].update(parallel_code_weight=weight, parallel_code_loss=form, parallel_weight=1.0)
        res = train(config_from_dict(cfg), tiny_corpus / "data" / "train", None, tmp_path / f"exp{weight}",
                    progress=False)
        model = res.model.eval()
        with torch.no_grad():
            d = [model._parallel_code_loss(model.encode(pt.batches[step][0])["z"],
                                           *pt.draw_partner_crops(step, model.hop)).item() for step in range(6)]
        measured[weight] = float(np.mean(d))
        if weight > 0:
            assert res.final["loss/parallel_code"] > 0
    # (the tiny model's InfoNCE over 256 partner moments falls more slowly than the distance)
    assert measured[2.0] < {"commitment": 0.7, "contrastive": 0.85}[form] * measured[0.0], measured


def test_contrastive_agreement_equals_a_hand_computed_infonce():
    from vqspeech.models.code_agreement import contrastive_to_partner

    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 5, 7, generator=g)
    zp = torch.randn(2, 5, 9, generator=g)
    index = torch.tensor([[0, 1, 3, 4, 4, 6, 8], [-1, 2, 2, 3, 5, 7, -1]])
    got = contrastive_to_partner(z, zp, index, tau=0.2, guard=2).item()
    total, count = 0.0, 0
    for b in range(2):
        for c in range(7):
            k = int(index[b, c])
            if k < 0:
                continue
            a = z[b, :, c] / z[b, :, c].norm()
            sims = [float(a @ (zp[b, :, j] / zp[b, :, j].norm())) / 0.2 for j in range(9)]
            allowed = [j for j in range(9) if j == k or abs(j - k) > 2]
            total += -(sims[k] - np.log(sum(np.exp(sims[j]) for j in allowed)))
            count += 1
    assert got == pytest.approx(total / count, rel=1e-5)
    # the guarded neighbours do not count: changing them changes nothing
    zp2 = zp.clone()
    zp2[0, :, 2] += 5.0   # a moment that is some codes' negative (or positive) moves the loss
    assert contrastive_to_partner(z, zp2, index, tau=0.2, guard=2).item() != pytest.approx(got, rel=1e-6)
    alone = torch.tensor([[3, -1, -1, -1, -1, -1, -1], [-1] * 7])
    base = contrastive_to_partner(z, zp, alone, tau=0.2, guard=2).item()
    for j in (1, 2, 4, 5):     # neighbours of moment 3 within the guard
        zp3 = zp.clone()
        zp3[0, :, j] = torch.randn(5, generator=g)
        assert contrastive_to_partner(z, zp3, alone, tau=0.2, guard=2).item() == pytest.approx(base, rel=1e-6)
    # a crop whose every code points exactly at its partner's scores better than a shuffled one
    same = contrastive_to_partner(zp[:, :, :7], zp, torch.arange(7).repeat(2, 1), tau=0.1).item()
    shuffled = contrastive_to_partner(zp[:, :, torch.randperm(7, generator=g)], zp, torch.arange(7).repeat(2, 1),
                                      tau=0.1).item()
    assert same < shuffled


def test_model_uses_the_configured_agreement_form():
    from vqspeech.models.code_agreement import contrastive_to_partner

    cfg, m, wav = _tiny_model_and_wav(parallel_code_weight=1.0, parallel_code_loss="contrastive",
                                      parallel_code_temperature=0.3)
    partner_wav = torch.rand(2, 2048) * 2 - 1
    n = 2048 // m.hop
    index = torch.arange(n).repeat(2, 1)
    with torch.no_grad():
        z, zp = m.encode(wav)["z"], m.encode(partner_wav)["z"]
        assert m._parallel_code_loss(z, partner_wav, index).item() == pytest.approx(
            contrastive_to_partner(z, zp, index, tau=0.3).item(), rel=1e-6)


def test_model_adds_the_weighted_masked_l1_of_the_partner_decoding():
    cfg, m, wav = _tiny_model_and_wav(parallel_weight=0.5)
    spk = torch.tensor([0, 1])
    n = 2048 // 64
    partner = torch.tensor([2, 0])
    target = torch.randn(2, cfg.decoder_conf.n_mels, n)
    mask = torch.ones(2, n)
    mask[1, n // 2:] = 0
    out = m(wav, spk, parallel=(partner, target, mask))
    plain = m(wav, spk)
    enc = m.encode(wav)
    pred = m.decoder(enc["z_q"], m.speaker_vectors(partner)).float()[..., :n]
    err = (pred - target).abs().mean(dim=1)
    expected = (err * mask).sum() / mask.sum()
    assert out["parallel_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out["loss"].item() == pytest.approx(plain["loss"].item() + 0.5 * expected.item(), rel=1e-5)
    # a target changed only where the mask is 0 changes nothing
    target2 = target.clone()
    target2[1, :, n // 2:] += 10
    assert m(wav, spk, parallel=(partner, target2, mask))["parallel_loss"].item() == pytest.approx(
        out["parallel_loss"].item(), rel=1e-6)


def _decoding_voices_apart(model):
    """``model`` with each decode and critic call apart, as before they shared batches."""
    model.voices_in_one_batch = False
    return model


# content consistency's encoder reads the decoder's log-mel frames: a log-mel encoder of the same hop
EVERY_VOICE = dict(gan_weight=0.1, gan_on_conversions=True, content_consistency_weight=0.5, encoder_conf={
    "input": "mel", "mel_bins": 80, "mel_n_fft": 256, "mel_hop": 16, "kernel_sizes": [4, 4], "strides": [2, 2]})


@pytest.mark.parametrize("source_pitch, others", [(False, {}), (True, {}), (True, EVERY_VOICE)],
                         ids=["partners", "partners-pitch", "every-voice-pitch"])
def test_one_batch_of_every_voice_trains_like_one_call_each(source_pitch, others):
    import copy
    # training mode: time jitter, EMA updates and (with pitch) source_pitch_dropout 0.5 all draw
    # from the global generator, so a changed order of draws would change the losses
    cfg, m, _ = _tiny_model_and_wav(parallel_weight=0.5, source_pitch=source_pitch, source_pitch_dropout=0.5,
                                    **others)
    m.train()
    apart, reseeded = (_decoding_voices_apart(copy.deepcopy(m)) for _ in range(2))
    t = torch.arange(4096) / 16000
    wav = torch.stack([0.5 * torch.sin(2 * torch.pi * f * t) for f in (150, 190, 230, 270)])  # voiced
    spk, partner = torch.tensor([0, 1, 2, 0]), torch.tensor([2, 0, 1, 1])
    n = 4096 // 64
    target, mask = torch.randn(4, cfg.decoder_conf.n_mels, n), torch.ones(4, n)
    parallel = (partner, target, mask) + ((m.source_pitch(wav[[1, 2, 3, 0]]),) if source_pitch else ())
    outs, batches, judged = [], {id(m): [], id(apart): []}, {id(m): [], id(apart): []}
    for model in (m, apart):
        model.decoder.register_forward_hook(lambda mod, args, out, key=id(model): batches[key].append(out.shape[0]))
        if model.critic is not None:
            model.critic.register_forward_hook(
                lambda mod, args, out, key=id(model): judged[key].append(out[1].shape[0]))
        torch.manual_seed(7)
        out = model(wav, spk, parallel=parallel)
        out["loss"].backward()
        outs.append((out, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}))
    (fused, fused_grads), (two, two_grads) = outs
    voices = 4 if others else 2   # own and partner [, content consistency's and the critic's conversions]
    assert batches == {id(m): [4 * voices], id(apart): [4] * voices}
    # the critic: real, predicted and conversions for its loss, then predicted and conversions frozen
    assert judged == ({id(m): [12, 8], id(apart): [4] * 5} if others else {id(m): [], id(apart): []})
    keys = ["loss", "recon_loss", "parallel_loss"] + (
        ["content_consistency_loss", "gan_loss", "critic_loss", "feature_matching_loss"] if others else [])
    for key in keys:
        assert fused[key].item() == pytest.approx(two[key].item(), rel=1e-5), key
    assert fused_grads.keys() == two_grads.keys() and len(fused_grads) > 10
    for k, grad in fused_grads.items():
        torch.testing.assert_close(grad, two_grads[k], rtol=1e-4, atol=1e-6, msg=k)
    if source_pitch:  # the withheld rows matter: other draws would not have matched
        torch.manual_seed(8)
        assert reseeded(wav, spk, parallel=parallel)["parallel_loss"].item() != pytest.approx(
            fused["parallel_loss"].item(), rel=1e-3)


def test_config_errors():
    with pytest.raises(ConfigError, match="parallel_weight: must be >= 0"):
        config_from_dict({"decoder": "spectral", "decoder_conf": {"parallel_weight": -1}})
    with pytest.raises(ConfigError, match="parallel_code_weight: must be >= 0"):
        config_from_dict({"decoder": "spectral", "decoder_conf": {"parallel_code_weight": -0.5}})
    with pytest.raises(ConfigError, match="parallel_code_loss: must be commitment or contrastive, got 'ce'"):
        config_from_dict({"decoder": "spectral", "decoder_conf": {"parallel_code_loss": "ce"}})
    with pytest.raises(ConfigError, match="parallel_code_temperature: must be > 0"):
        config_from_dict({"decoder": "spectral", "decoder_conf": {"parallel_code_temperature": 0}})
    with pytest.raises(ConfigError, match="parallel_weight: needs speaker_conditioning table or reference"):
        config_from_dict({"decoder": "spectral", "speaker_conditioning": "learned",
                          "decoder_conf": {"parallel_weight": 1.0}})


def test_training_with_parallel_supervision_lowers_the_parallel_loss(tiny_corpus, tmp_path):
    from vqspeech.train import train

    cfg = tiny_spectral(max_steps=80, batch_size=4, segment_samples=2048, lr=3e-3, log_every=10,
                        val_every=1000, checkpoint_every=80, audio_samples=0).to_dict()
    cfg["decoder_conf"]["parallel_weight"] = 1.0
    cfg = config_from_dict(cfg)
    res = train(cfg, tiny_corpus / "data" / "train", None, tmp_path / "exp", progress=False)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "exp" / "tensorboard"))
    acc.Reload()
    values = [e.value for e in acc.Scalars("loss/parallel")]
    assert len(values) == 8 and values[-1] < 0.7 * values[0], values
    assert res.final["loss/parallel"] == pytest.approx(values[-1], rel=1e-4)


def test_training_without_transcripts_is_refused(tiny_corpus, tmp_path):
    import shutil

    from vqspeech.train import train

    data = tmp_path / "train"
    shutil.copytree(tiny_corpus / "data" / "train", data)
    (data / "text").unlink()
    cfg = tiny_spectral(max_steps=2, batch_size=2, segment_samples=2048, audio_samples=0).to_dict()
    cfg["decoder_conf"]["parallel_weight"] = 1.0
    with pytest.raises(UserError, match="text: decoder_conf.parallel_weight / parallel_code_weight need the "
                                        "training transcripts"):
        train(config_from_dict(cfg), data, None, tmp_path / "exp", progress=False)


# --------------------------------------------------------------------------- partners without transcripts
@pytest.fixture(scope="module")
def shifted_train(tiny_corpus, tmp_path_factory):
    """The tiny training set with every voice also shifted by -3 and +3 semitones (and utt2origin)."""
    from vqspeech.corpus_prep.voice_shift import shift_voices

    out = tmp_path_factory.mktemp("shifted") / "train"
    shift_voices(tiny_corpus / "data" / "train", out, [-3, 3], jobs=2, progress=False)
    return out


def test_origin_partners_are_the_shifted_copies_aligned_frame_for_frame(shifted_train):
    from vqspeech.corpus_prep.voice_shift import read_origins
    from vqspeech.parallel_targets import same_times

    cfg = tiny_spectral()
    dd = read_data_dir(shifted_train)
    origin = read_origins(shifted_train, dd.utterances)
    model = build_model(cfg, len(dd.speakers))
    b = CropBatches(dd, dd.speakers, 16000, 4, 4096, seed=0)
    with torch.no_grad():
        pt = ParallelTargets(b, None, lambda w: model.target_frames(torch.from_numpy(w)[None])[0].numpy(),
                             cfg.decoder_conf.frame_hop, origin=origin)
    assert pt.coverage == 1.0
    for i, partners in enumerate(pt.partners):
        # two copies each (the original and the other shift), never another sentence or another reader
        assert sorted(origin[b.utts[j]] for j, _ in partners) == [origin[b.utts[i]]] * 2
        for j, path in partners:
            assert b.spk[j] != b.spk[i]
            np.testing.assert_array_equal(path, np.minimum(np.arange(pt.frames[i].shape[1]), pt.frames[j].shape[1] - 1))
    np.testing.assert_array_equal(same_times(3, 5)[0], [0, 1, 2])
    np.testing.assert_array_equal(same_times(3, 5)[1], [0, 1, 2, 2, 2])
    # the drawn targets are the copy's frames at the crop's own times
    spk, target, mask = pt.draw(2)
    base = 2 * b.global_batch
    for row, i in enumerate(b.utterance_indices(2)):
        j = next(j for j, _ in pt.partners[i] if b.spk[j] == int(spk[row]))
        first = int(round(b.crop_start(i, base + row) / pt.hop))
        k = next(k for k in range(mask.shape[1]) if mask[row, k])
        np.testing.assert_array_equal(target[row, :, k].numpy(), pt.frames[j][:, first + k])
    with pytest.raises(ValueError, match="one of them"):
        ParallelTargets(b, dd.text, None, 64, origin=origin)


def test_training_with_origin_partners_lowers_the_parallel_loss(shifted_train, tmp_path):
    import shutil

    from vqspeech.train import train

    cfg = tiny_spectral(max_steps=60, batch_size=4, segment_samples=2048, lr=3e-3, log_every=10,
                        val_every=1000, checkpoint_every=60, audio_samples=0).to_dict()
    cfg["decoder_conf"].update(parallel_weight=1.0, parallel_code_weight=0.2, parallel_code_loss="contrastive",
                               parallel_partners="origin")
    data = tmp_path / "train"
    shutil.copytree(shifted_train, data)
    (data / "text").unlink()  # no transcripts needed
    train(config_from_dict(cfg), data, None, tmp_path / "exp", progress=False)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "exp" / "tensorboard"))
    acc.Reload()
    values = [e.value for e in acc.Scalars("loss/parallel")]
    assert len(values) == 6 and values[-1] < 0.7 * values[0], values
    (data / "utt2origin").unlink()
    with pytest.raises(UserError, match=r"utt2origin: not found \(vqspeech shift-voices writes it"):
        train(config_from_dict(cfg), data, None, tmp_path / "exp2", progress=False)


def test_parallel_partners_must_be_transcript_or_origin():
    with pytest.raises(ConfigError, match="parallel_partners: must be transcript or origin, got 'text'"):
        config_from_dict({"decoder": "spectral", "decoder_conf": {"parallel_partners": "text"}})
