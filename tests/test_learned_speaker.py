"""speaker_conditioning: learned — a speaker encoder trained jointly with the VQ-VAE on other
utterances of each training speaker (the comparison row for resemblyzer's d-vectors)."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from vqspeech.config import config_from_dict
from vqspeech.errors import ConfigError
from vqspeech.models import build_model
from vqspeech.models.speaker_encoder import SpeakerEncoder
from vqspeech.training_crops import CropBatches, ReferenceCrops

from helpers import tiny_config, train_without_last_speaker


def _learned_config(decoder="spectral", **train):
    d = tiny_config(**train).to_dict()
    d["speaker_conditioning"] = "learned"
    if decoder == "spectral":
        d["decoder"] = "spectral"
        d["decoder_conf"] = {"n_mels": 20, "n_fft": 256, "frame_hop": 16, "channels": 16, "layers": 2,
                             "speaker_dim": 4}
    return config_from_dict(d)


def test_the_speaker_encoder_gives_one_unit_vector_per_clip_of_any_length():
    torch.manual_seed(0)
    enc = SpeakerEncoder(16000, channels=16).eval()
    for n in (4000, 16000, 50000):
        e = enc(0.1 * torch.randn(3, n))
        assert e.shape == (3, 256) and torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    assert np.allclose(enc.embed(x, 16000), enc(torch.from_numpy(x)[None])[0].detach().numpy(), atol=1e-6)
    assert enc.embed(x[::2].copy(), 8000).shape == (256,)  # resampled to the model's rate first


def _is_window_of(row, wav):
    """Whether ``row`` is a contiguous window of ``wav`` (or ``wav`` repeated, when shorter)."""
    if len(wav) < len(row):
        return np.array_equal(row, np.resize(wav, len(row)))
    k = int(np.abs(row).argmax())                    # a loud sample pins the candidate starts
    starts = np.flatnonzero(wav == row[k]) - k
    return any(0 <= s <= len(wav) - len(row) and np.array_equal(wav[s:s + len(row)], row) for s in starts)


def test_reference_crops_come_from_another_utterance_of_the_same_speaker(tiny_corpus):
    from vqspeech.kaldi_data_dir import read_data_dir

    dd = read_data_dir(tiny_corpus / "data" / "train")
    batches = CropBatches(dd, dd.speakers, 16000, batch_size=6, segment=2048, seed=4)
    crops = ReferenceCrops(batches, seconds=0.5)
    for step in (0, 7):
        ref = crops.draw(step)
        assert ref.shape == (6, 8000) and torch.equal(ref, crops.draw(step))   # a function of the step
        for row, i in zip(ref.numpy(), batches.utterance_indices(step)):
            matches = [j for j in range(len(batches.utts)) if _is_window_of(row, batches.audio(j))]
            assert matches and all(batches.spk[j] == batches.spk[i] for j in matches)
            assert i not in matches                                            # never the crop's own utterance
    assert not torch.equal(crops.draw(0), crops.draw(1))


def test_the_decoder_follows_the_learned_embedding_and_training_gradients_reach_the_encoder():
    torch.manual_seed(0)
    m = build_model(_learned_config(), num_speakers=3)
    wav, spk = 0.1 * torch.randn(2, 1024), torch.tensor([0, 2])
    ref = 0.1 * torch.randn(2, 4000)
    out = m(wav, spk, ref)
    out["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.speaker_encoder.parameters())
    m.eval()
    with torch.no_grad():
        e = m.speaker_encoder(ref)
        same = m(wav, spk, ref)["frames"]
        # the embedding path: forward with audio == frames from the embedding it gives
        assert torch.allclose(same, m.decoder(m.encode(wav)["z_q"], m.speaker_vectors(e)), atol=1e-5)
        other = m(wav, spk, 0.5 * torch.randn(2, 4000))["frames"]
    assert not torch.allclose(same, other)
    with pytest.raises(ConfigError, match="table, reference or learned"):
        config_from_dict({"speaker_conditioning": "jointly"})
    with pytest.raises(ConfigError, match="batch_size: speaker_conditioning: learned needs at least 2"):
        config_from_dict({"speaker_conditioning": "learned", "train_conf": {"batch_size": 1}})


@pytest.fixture(scope="module")
def learned_model(tiny_corpus, tmp_path_factory):
    """A tiny learned-speaker model trained without one speaker of the tiny corpus, and the same
    model untrained (the training's seeded initial weights)."""
    from vqspeech.kaldi_data_dir import read_data_dir

    out = tmp_path_factory.mktemp("learned")
    cfg = _learned_config("spectral", max_steps=80, batch_size=4, segment_samples=2048, checkpoint_every=40,
                          audio_samples=0, val_every=1000, lr=3e-3)
    torch.manual_seed(cfg.train_conf.seed)
    init = build_model(cfg, len(read_data_dir(tiny_corpus / "data" / "train").speakers) - 1)
    res, heldout = train_without_last_speaker(tiny_corpus, out, cfg)
    return out / "exp", heldout, res, init


def test_training_learns_the_encoder_and_stores_each_speakers_mean_embedding(learned_model):
    from vqspeech.checkpoint import load_model

    from vqspeech.kaldi_data_dir import read_data_dir

    exp, heldout, res, init = learned_model
    lm = load_model(exp / "checkpoint.pt")
    assert heldout not in lm.speakers
    refs = lm.model.speaker_refs
    assert torch.allclose(refs.norm(dim=1), torch.ones(len(lm.speakers)), atol=1e-5)
    assert (refs @ refs.T - torch.eye(len(refs))).abs().max() < 0.999   # distinct voices, not one vector
    # the same training batch, with its reference crops: the trained model reconstructs it better
    dd = read_data_dir(exp.parent / "train")
    batches = CropBatches(dd, dd.speakers, 16000, batch_size=8, segment=2048, seed=11)
    wav, spk = batches[0]
    ref = ReferenceCrops(batches).draw(0)
    with torch.no_grad():
        before = init.eval()(wav, spk, ref)["recon_loss"]
        after = lm.model.eval()(wav, spk, ref)["recon_loss"]
    assert after < 0.7 * before, (float(before), float(after))


def test_convert_voice_to_an_unheard_voice_with_the_learned_encoder(learned_model, tiny_corpus, tmp_path):
    pytest.importorskip("resemblyzer", reason="resemblyzer trims the reference's silences")
    from vqspeech.checkpoint import load_model
    from vqspeech.speaker_reference import reference_embedding

    exp, heldout, _, _ = learned_model
    lines = [ln.split() for ln in (tiny_corpus / "data" / "test" / "wav.scp").read_text().splitlines()]
    refs = [p for u, p in lines if u.startswith(heldout + "_")][:2]
    src = next(p for u, p in lines if not u.startswith(heldout + "_"))
    lm = load_model(exp / "checkpoint.pt")
    e = reference_embedding(refs, model=lm.model)
    d_vector = reference_embedding(refs)
    assert e.shape == (256,) and abs(np.linalg.norm(e) - 1) < 1e-5 and not np.allclose(e, d_vector)
    res = subprocess.run([sys.executable, "-m", "vqspeech", "convert-voice", "--model", str(exp / "checkpoint.pt"),
                          "--input", src, "--target-audio", *refs, "--output", str(tmp_path / "out.wav")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    x, sr = sf.read(tmp_path / "out.wav")
    assert sr == 16000 and abs(len(x) - len(sf.read(src)[0])) <= 64
    silent = tmp_path / "quiet.wav"
    sf.write(silent, np.zeros(32000, dtype=np.float32), 16000)
    from vqspeech.errors import UserError

    with pytest.raises(UserError, match="silent"):
        reference_embedding([silent], model=lm.model)


def test_demo_converts_to_an_uploaded_voice_with_the_learned_encoder(learned_model, tiny_corpus, monkeypatch):
    pytest.importorskip("gradio")
    pytest.importorskip("resemblyzer", reason="resemblyzer trims the reference's silences")
    from vqspeech import demo_app

    exp, heldout, _, _ = learned_model
    lines = [ln.split() for ln in (tiny_corpus / "data" / "test" / "wav.scp").read_text().splitlines()]
    ref = next(p for u, p in lines if u.startswith(heldout + "_"))
    src = next(p for u, p in lines if not u.startswith(heldout + "_"))
    monkeypatch.setattr(demo_app, "_allowed", lambda path: True)
    conv = demo_app.Converter(str(exp / "checkpoint.pt"))
    calls = []
    real_embed = conv.lm.model.speaker_encoder.embed
    monkeypatch.setattr(conv.lm.model.speaker_encoder, "embed", lambda *a: calls.append(1) or real_embed(*a))
    (sr, pcm), _, info = conv(src, conv.lm.speakers[0], 1.0, 0, ref)
    assert sr == 16000 and pcm.dtype == np.int16 and len(pcm) > 0 and "the reference voice" in info
    assert calls == [1]   # the model's own encoder embedded the upload, not resemblyzer
