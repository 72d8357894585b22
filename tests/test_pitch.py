"""Source pitch: the batched YIN estimator, the decoder's pitch features, and spectral models
conditioned on them (decoder_conf.source_pitch) in training and conversion."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_spectral import tiny_spectral  # noqa: E402

from vqspeech.audio import load_audio  # noqa: E402
from vqspeech.config import config_from_dict  # noqa: E402
from vqspeech.errors import ConfigError  # noqa: E402
from vqspeech.models import build_model  # noqa: E402
from vqspeech.pitch import median_smoothed, normalised_log_f0, pitch_features, unknown_pitch, yin  # noqa: E402

SR = 16000


def _harmonic(f0, seconds=1.0, harmonics=5, amplitude=0.3):
    """A tone with ``harmonics`` partials of falling amplitude; ``f0`` a number or a per-sample array."""
    t = np.arange(int(SR * seconds)) / SR
    phase = 2 * np.pi * (np.cumsum(np.broadcast_to(f0, t.shape)) / SR)
    return (amplitude * sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))).astype(np.float32)


@pytest.mark.parametrize("f0", [75.0, 123.4, 220.0, 410.0])
def test_yin_finds_the_fundamental_of_a_harmonic_tone(f0):
    est, periodicity = yin(torch.from_numpy(_harmonic(f0))[None], SR, 192)
    assert est.shape == periodicity.shape == (1, SR // 192)
    inner = est[0, 4:-4]          # frames whose window lies inside the tone
    assert (inner > 0).all()
    cents = 1200 * torch.log2(inner / f0)
    assert cents.abs().max() < 5, cents.abs().max()
    assert (periodicity[0, 4:-4] > 0.9).all()


def test_yin_calls_silence_and_noise_unvoiced():
    f0, periodicity = yin(torch.zeros(1, SR), SR, 192)
    assert (f0 == 0).all() and (periodicity == 0).all()
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal((2, SR)).astype(np.float32)) * 0.1
    f0, periodicity = yin(noise, SR, 192)
    assert (f0 > 0).float().mean() < 0.05 and periodicity.mean() < 0.5


def test_yin_frames_are_centred_on_multiples_of_the_hop():
    # 150 Hz for the first 0.5 s, then 300 Hz: frame i is centred on sample i * hop
    wav = np.concatenate([_harmonic(150.0, 0.5), _harmonic(300.0, 0.5)])
    f0, _ = yin(torch.from_numpy(wav)[None], SR, 160)
    switch = 8000 // 160                    # frame 50 is centred on the switch
    margin = 1024 // 2 // 160 + 1           # frames whose window reaches across it
    assert f0[0, switch - margin] == pytest.approx(150.0, rel=0.01)
    assert f0[0, switch + margin] == pytest.approx(300.0, rel=0.01)


def test_yin_in_chunks_and_in_a_batch_equals_one_row_at_once():
    glide = _harmonic(np.linspace(100.0, 250.0, 2 * SR), 2.0)
    x = torch.from_numpy(glide)[None]
    whole = yin(x, SR, 192)
    for a, b in zip(whole, yin(x, SR, 192, chunk_frames=7)):
        assert torch.equal(a, b)
    batch = torch.stack([x[0], torch.from_numpy(_harmonic(180.0, 2.0))])
    for a, b in zip(whole, yin(batch, SR, 192)):
        torch.testing.assert_close(a[0], b[0], rtol=1e-4, atol=1e-4)
    assert (whole[0][0, 4:-4] > 0).all()
    assert whole[0][0, 10] < whole[0][0, 100] < whole[0][0, -10]   # the glide rises


def test_yin_on_short_and_empty_inputs():
    f0, periodicity = yin(torch.zeros(1, 300), SR, 192)
    assert f0.shape == periodicity.shape == (1, 1)
    f0, periodicity = yin(torch.zeros(3, 100), SR, 192)
    assert f0.shape == (3, 0)
    with pytest.raises(ValueError, match="leave no lags"):
        yin(torch.zeros(1, SR), SR, 192, fmin=480.0, fmax=500.0)


def test_yin_agrees_with_librosa_pyin_on_speech(tiny_corpus):
    librosa = pytest.importorskip("librosa")
    lines = (tiny_corpus / "data" / "test" / "wav.scp").read_text().splitlines()
    wav = load_audio(lines[0].split()[1], SR)
    ours = yin(torch.from_numpy(wav)[None], SR, 192)[0][0].numpy()
    ref, ref_voiced, _ = librosa.pyin(wav, fmin=60, fmax=500, sr=SR, frame_length=1024, hop_length=192,
                                      center=True)
    n = min(len(ours), len(ref))
    ours, ref, ref_voiced = ours[:n], ref[:n], ref_voiced[:n]
    both = (ours > 0) & ref_voiced
    assert both.sum() > 20
    cents = np.abs(1200 * np.log2(ours[both] / ref[both]))
    assert np.mean(cents < 50) > 0.85, np.mean(cents < 50)
    assert np.mean((ours > 0) == ref_voiced) > 0.65


def test_normalised_log_f0_equals_a_hand_computed_z_score():
    f0 = torch.tensor([[100.0, 0.0, 200.0, 400.0], [150.0, 150.0, 0.0, 0.0]])
    got = normalised_log_f0(f0)
    logs = np.log([100.0, 200.0, 400.0])
    z = (logs - logs.mean()) / logs.std()             # population std over the voiced frames
    np.testing.assert_allclose(got[0].numpy(), [z[0], 0.0, z[1], z[2]], rtol=1e-5)
    # a flat contour has spread 0: floored, so it stays 0 instead of dividing by zero
    assert torch.equal(got[1], torch.zeros(4))


def test_octave_errors_are_smoothed_away_and_the_contour_clipped():
    f0 = torch.tensor([[100.0, 101.0, 200.0, 102.0, 0.0, 0.0, 103.0, 104.0, 105.0, 210.0, 106.0]])
    # each voiced frame: the median of the voiced frames among the 5 around it (lower middle of 4)
    expected = [101.0, 101.0, 101.0, 102.0, 0.0, 0.0, 104.0, 104.0, 105.0, 105.0, 106.0]
    assert median_smoothed(f0).tolist() == [expected]
    assert median_smoothed(torch.zeros(2, 0)).shape == (2, 0)
    # an outlier that survives is clipped at 3 spreads
    z = normalised_log_f0(torch.tensor([[100.0] * 20 + [800.0]]))
    assert z[0, -1] == 3.0 and (z[0, :-1] < 0).all()


def test_pitch_features_are_contour_periodicity_and_known():
    wav = torch.from_numpy(_harmonic(np.linspace(120.0, 180.0, SR)))[None]
    feats = pitch_features(wav, SR, 192)
    assert feats.shape == (1, 3, SR // 192) and feats.dtype == torch.float32
    contour, periodicity, known = feats[0]
    assert (known == 1).all()
    voiced = contour[4:-4]
    assert voiced[0] < 0 < voiced[-1]                 # a rising contour, centred on its mean
    assert (periodicity[4:-4] > 0.9).all()
    assert torch.equal(unknown_pitch(2, 5), torch.zeros(2, 3, 5))


def _pitch_model(seed=0, **decoder_conf):
    cfg = tiny_spectral().to_dict()
    cfg["decoder_conf"].update(source_pitch=True, **decoder_conf)
    torch.manual_seed(seed)
    return build_model(config_from_dict(cfg), num_speakers=3).eval()


def test_the_decoder_reads_pitch_only_when_configured():
    model = _pitch_model()
    wav = torch.from_numpy(_harmonic(np.linspace(120.0, 180.0, 4096), 4096 / SR))[None]
    codes = model.encode(wav)["codes"]
    spk = torch.tensor([1])
    pitch = model.source_pitch(wav)
    assert pitch.shape == (1, 3, 4096 // 64)
    with torch.no_grad():
        without = model.frames(codes, spk)
        assert torch.equal(without, model.frames(codes, spk, unknown_pitch(1, pitch.shape[-1])))
        assert not torch.allclose(without, model.frames(codes, spk, pitch))
    plain = build_model(tiny_spectral(), num_speakers=3).eval()
    assert plain.decoder.pitch_in is None and plain.source_pitch(wav) is None
    with torch.no_grad():   # a model without source pitch ignores one given
        c = plain.encode(wav)["codes"]
        assert torch.equal(plain.frames(c, spk), plain.frames(c, spk, pitch))


def test_training_withholds_the_pitch_of_the_configured_share_of_crops():
    wav = torch.from_numpy(np.stack([_harmonic(100.0 + 20 * i, 4096 / SR) for i in range(64)]))
    for share in (0.0, 0.25, 1.0):
        model = _pitch_model(source_pitch_dropout=share).train()
        torch.manual_seed(1)
        known = model._training_pitch(wav)[:, 2].amax(-1)
        assert set(known.tolist()) <= {0.0, 1.0}
        withheld = 1 - known.mean().item()
        if share in (0.0, 1.0):
            assert withheld == share
        else:
            assert 0.1 < withheld < 0.45, withheld
    model.eval()   # evaluation never withholds it
    assert (model._training_pitch(wav)[:, 2] == 1).all()


def test_a_model_learns_from_the_source_pitch():
    """With one code the codes carry nothing, so only the pitch tells the frames apart. Every crop's
    log F0 has the same mean and spread (the register a speaker gives) and a random contour, so the
    normalised contour fixes each frame's F0: the pitch model's reconstruction error falls well
    below the model's without it."""
    t = np.arange(4096) / SR

    def batch(rng):
        rows = []
        for _ in range(8):
            z = np.sin(2 * np.pi * rng.uniform(2, 6) * t + rng.uniform(0, 2 * np.pi))
            z = (z - z.mean()) / z.std()
            rows.append(_harmonic(150.0 * np.exp(0.3 * z), 4096 / SR))
        return torch.from_numpy(np.stack(rows))

    losses = {}
    for source_pitch in (False, True):
        cfg = tiny_spectral().to_dict()
        cfg["quantizer_conf"].update(num_codes=1, kmeans_init=False)
        # 1024-point frames resolve the harmonics of a 100-200 Hz voice
        cfg["decoder_conf"].update(source_pitch=source_pitch, source_pitch_dropout=0.0, n_fft=1024)
        torch.manual_seed(0)
        model = build_model(config_from_dict(cfg), num_speakers=1).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        rng = np.random.default_rng(0)
        for _ in range(300):
            out = model(batch(rng), torch.zeros(8, dtype=torch.long))
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
        model.eval()
        rng = np.random.default_rng(1)
        with torch.no_grad():
            losses[source_pitch] = np.mean([model(batch(rng), torch.zeros(8, dtype=torch.long))["recon_loss"].item()
                                            for _ in range(4)])
    assert losses[True] < 0.7 * losses[False], losses


def test_conversion_follows_the_source_pitch(tiny_corpus):
    from vqspeech.conversion import convert, decode_codes, encode_wav
    from vqspeech.generation import SamplingOptions

    model = _pitch_model()
    wav = load_audio((tiny_corpus / "data" / "test" / "wav.scp").read_text().splitlines()[0].split()[1], SR)[:8192]
    opts = SamplingOptions(seed=5)
    res = convert(model, wav, 2, SR, opts)
    codes = encode_wav(model, wav, sample_rate=SR)
    assert torch.equal(res.codes, codes)
    pitch = model.source_pitch(torch.from_numpy(wav)[None])[0]
    np.testing.assert_array_equal(res.wav, decode_codes(model, codes, 2, opts, pitch=pitch)[: len(wav)])
    assert not np.array_equal(res.wav, decode_codes(model, codes, 2, opts)[: len(wav)])


def test_source_pitch_dropout_must_be_a_share():
    with pytest.raises(ConfigError, match=r"decoder_conf.source_pitch_dropout: must be in \[0, 1\], got 1.5"):
        config_from_dict({"decoder": "spectral", "decoder_conf": {"source_pitch": True, "source_pitch_dropout": 1.5}})


def test_a_saved_pitch_model_loads_with_its_pitch_input_and_says_so(tmp_path):
    from vqspeech.checkpoint import load_model, save_checkpoint
    from vqspeech.checkpoint_info import describe_checkpoint, format_description

    model = _pitch_model()
    cfg = model.cfg
    save_checkpoint(tmp_path / "m.pt", {"config": cfg.to_dict(), "speakers": ["a", "b", "c"], "sample_rate": SR,
                                        "hop": model.hop, "model": model.state_dict(), "step": 0})
    loaded = load_model(tmp_path / "m.pt").model
    assert loaded.uses_source_pitch
    torch.testing.assert_close(loaded.decoder.pitch_in.weight, model.decoder.pitch_in.weight)
    info = describe_checkpoint(tmp_path / "m.pt")
    assert info["decoder"]["source_pitch"] is True
    assert "conditioned on the source's pitch" in format_description(info)
