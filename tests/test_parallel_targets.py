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


def test_model_adds_the_weighted_masked_l1_of_the_partner_decoding():
    cfg = tiny_spectral().to_dict()
    cfg["decoder_conf"]["parallel_weight"] = 0.5
    cfg = config_from_dict(cfg)
    torch.manual_seed(0)
    m = build_model(cfg, 3).eval()
    wav = torch.rand(2, 2048) * 2 - 1
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


def test_config_errors():
    with pytest.raises(ConfigError, match="parallel_weight: must be >= 0"):
        config_from_dict({"decoder": "spectral", "decoder_conf": {"parallel_weight": -1}})
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
    with pytest.raises(UserError, match="text: decoder_conf.parallel_weight needs the training transcripts"):
        train(config_from_dict(cfg), data, None, tmp_path / "exp", progress=False)
