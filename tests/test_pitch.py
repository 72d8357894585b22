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
from vqspeech.pitch import (log_f0_stats, median_smoothed, normalised_log_f0, pitch_features,  # noqa: E402
                            smoothing_frames, unknown_pitch, utterance_log_f0_stats, voiced_moving_average, yin)

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


def test_the_contour_normalised_with_given_statistics_equals_a_hand_computed_z_score():
    f0 = torch.tensor([[100.0, 0.0, 200.0, 400.0], [0.0, 0.0, 0.0, 0.0]])
    logs = np.log([100.0, 200.0, 400.0])
    stats = log_f0_stats(f0)
    np.testing.assert_allclose(stats[0].numpy(), [logs.mean(), logs.std()], rtol=1e-6)
    assert stats[1].tolist() == pytest.approx([0.0, 0.05])   # no voiced frame: a level of 0, the floor spread
    assert torch.equal(normalised_log_f0(f0, stats=stats), normalised_log_f0(f0))
    # another stretch's level and spread (a crop's utterance): (log F0 - its mean) / its spread
    other = torch.tensor([[np.log(150.0), 0.25], [0.0, 1.0]])
    got = normalised_log_f0(f0, stats=other)
    np.testing.assert_allclose(got[0].numpy(), [(np.log(100.0) - np.log(150.0)) / 0.25, 0.0,
                                                (np.log(200.0) - np.log(150.0)) / 0.25, 3.0], rtol=1e-5)  # 3.9 clipped
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


def test_the_voicing_channel_is_periodicity_a_binary_flag_or_nothing():
    # a tone with a silent middle: voiced, unvoiced, voiced
    tone = _harmonic(np.full(SR, 150.0))
    tone[SR // 3: 2 * SR // 3] = 0.0
    wav = torch.from_numpy(tone)[None]
    graded = pitch_features(wav, SR, 192)
    binary = pitch_features(wav, SR, 192, voicing="binary")
    silent = pitch_features(wav, SR, 192, voicing="none")
    for other in (binary, silent):              # contour and "known" do not depend on the choice
        assert torch.equal(other[:, 0::2], graded[:, 0::2])
    f0, periodicity = yin(wav, SR, 192)
    voiced = median_smoothed(f0) > 0
    assert 0 < voiced.sum() < voiced.shape[-1]  # both kinds of frame are present
    assert torch.equal(graded[:, 1], periodicity)
    assert torch.equal(binary[:, 1], voiced.float())
    assert torch.equal(silent[:, 1], torch.zeros_like(silent[:, 1]))
    assert not torch.equal(graded[:, 1], binary[:, 1])  # YIN's periodicity is graded (0.78 at the edges)
    with pytest.raises(ValueError, match="voicing must be one of periodicity, binary, none"):
        pitch_features(wav, SR, 192, voicing="soft")
    model = _pitch_model(source_pitch_voicing="binary")
    assert torch.equal(model.source_pitch(wav), pitch_features(wav, SR, 64, voicing="binary"))
    with pytest.raises(ConfigError, match="decoder_conf.source_pitch_voicing: must be one of periodicity, binary, "
                                          "none, got 'soft'"):
        config_from_dict({"decoder": "spectral", "decoder_conf": {"source_pitch": True,
                                                                  "source_pitch_voicing": "soft"}})


def test_the_voiced_moving_average_equals_a_loop_over_voiced_neighbours():
    rng = np.random.default_rng(3)
    contour = rng.standard_normal((2, 40)).astype(np.float32)
    voiced = rng.random((2, 40)) < 0.6
    voiced[1, 10:25] = False                      # a long unvoiced gap
    for width in (1, 3, 9):
        expected = np.zeros_like(contour)
        for b in range(2):
            for i in range(40):
                if voiced[b, i]:
                    near = [contour[b, j] for j in range(max(0, i - width // 2), min(40, i + width // 2 + 1))
                            if voiced[b, j]]
                    expected[b, i] = np.mean(near)
        got = voiced_moving_average(torch.from_numpy(contour), torch.from_numpy(voiced), width)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="odd number of frames, got 4"):
        voiced_moving_average(torch.from_numpy(contour), torch.from_numpy(voiced), 4)
    # milliseconds to the nearest odd frame count: 192-sample frames are 12 ms at 16 kHz
    assert [smoothing_frames(ms, SR, 192) for ms in (0, 12, 30, 36, 100, 200)] == [1, 1, 3, 3, 9, 17]


def test_a_smoothed_contour_keeps_the_slow_intonation_and_drops_the_wobble():
    # a 150 Hz voice gliding up a fifth over a second, with a fast 8 Hz vibrato of a semitone
    t = np.arange(SR) / SR
    f0 = 150.0 * 1.5 ** t * 2 ** (np.sin(2 * np.pi * 8 * t) / 12)
    wav = torch.from_numpy(_harmonic(f0))[None]
    raw = pitch_features(wav, SR, 192)
    smooth = pitch_features(wav, SR, 192, smoothing=smoothing_frames(125, SR, 192))   # one vibrato period
    assert torch.equal(smooth[:, 1:], raw[:, 1:])          # voicing and "known" as before
    voiced = raw[0, 0] != 0
    trend = np.polyval(np.polyfit(np.flatnonzero(voiced), raw[0, 0, voiced].numpy(), 1), np.arange(raw.shape[-1]))
    inner = slice(8, -8)
    wobble_raw = float(np.abs(raw[0, 0, inner].numpy() - trend[inner]).mean())
    wobble_smooth = float(np.abs(smooth[0, 0, inner].numpy() - trend[inner]).mean())
    assert wobble_smooth < 0.3 * wobble_raw, (wobble_smooth, wobble_raw)
    assert np.corrcoef(smooth[0, 0, inner].numpy(), trend[inner])[0, 1] > 0.98   # the rise is kept
    model = _pitch_model(source_pitch_smoothing_ms=125)
    assert torch.equal(model.source_pitch(wav), pitch_features(wav, SR, 64, smoothing=smoothing_frames(125, SR, 64)))
    with pytest.raises(ConfigError, match="decoder_conf.source_pitch_smoothing_ms: must be >= 0, got -5"):
        config_from_dict({"decoder": "spectral", "decoder_conf": {"source_pitch": True,
                                                                  "source_pitch_smoothing_ms": -5}})


def test_a_crop_normalised_over_its_utterance_has_the_utterance_contour():
    """Two seconds gliding from 100 to 200 Hz, and its second half cut out as a crop: normalised
    over itself the crop's contour is centred on 0 again; normalised with the utterance's
    statistics it is the utterance's own contour there (high, rising), away from the frames whose
    YIN window or median reaches past the cut."""
    wav = torch.from_numpy(_harmonic(np.geomspace(100.0, 200.0, 2 * SR), 2.0))[None]
    hop, first = 192, 84
    whole = pitch_features(wav, SR, hop)
    stats = utterance_log_f0_stats(wav, SR, hop)
    torch.testing.assert_close(stats, log_f0_stats(median_smoothed(yin(wav, SR, hop)[0])))
    crop = wav[:, first * hop:]
    own, over_utterance = pitch_features(crop, SR, hop), pitch_features(crop, SR, hop, stats=stats)
    margin = 1024 // 2 // hop + 1 + 2                   # the YIN window's half and the median's
    inner = slice(margin, own.shape[-1] - margin)
    expected = whole[0, 0, first:][inner]
    torch.testing.assert_close(over_utterance[0, 0, inner], expected, atol=2e-3, rtol=0)
    assert expected.mean() > 0.8 and abs(own[0, 0, inner].mean()) < 0.1
    assert torch.equal(over_utterance[0, 1:], own[0, 1:])   # voicing and "known" are the crop's


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


def test_training_normalises_crops_over_their_utterances_when_configured(tiny_corpus):
    from vqspeech.kaldi_data_dir import read_data_dir
    from vqspeech.train import _utterance_pitch_stats
    from vqspeech.training_crops import CropBatches

    dd = read_data_dir(tiny_corpus / "data" / "train")
    batches = CropBatches(dd, dd.speakers, SR, 4, 4096, seed=0)
    assert _utterance_pitch_stats(_pitch_model(), batches, torch.device("cpu")) is None  # "crop": none needed
    model = _pitch_model(source_pitch_normalisation="utterance", source_pitch_dropout=0.0).train()
    assert model.normalises_pitch_per_utterance and not _pitch_model().normalises_pitch_per_utterance
    table = _utterance_pitch_stats(model, batches, torch.device("cpu"))
    assert table.shape == (len(dd.utterances), 2)
    for i in (0, len(dd.utterances) - 1):
        audio = torch.from_numpy(batches.audio(i))[None]
        torch.testing.assert_close(table[i], utterance_log_f0_stats(audio, SR, 64)[0])
    wav, _ = batches[2]
    rows = table[batches.utterance_indices(2)]
    assert torch.equal(model._training_pitch(wav, rows), pitch_features(wav, SR, 64, stats=rows))
    assert not torch.equal(model._training_pitch(wav, rows), model._training_pitch(wav))
    with pytest.raises(ConfigError, match="source_pitch_normalisation: must be one of crop, utterance, got 'row'"):
        _pitch_model(source_pitch_normalisation="row")


def test_training_hands_each_crop_its_utterance_pitch_statistics(tiny_corpus, tmp_path, monkeypatch):
    """train() with source_pitch_normalisation: utterance gives every step's forward the rows of
    the per-utterance table for that batch's utterances, and validation its crops' own."""
    import vqspeech.train as training
    from vqspeech.kaldi_data_dir import read_data_dir
    from vqspeech.training_crops import CropBatches

    cfg = tiny_spectral(max_steps=6, batch_size=4, segment_samples=2048, log_every=3, val_every=6,
                        checkpoint_every=6, audio_samples=0).to_dict()
    cfg["decoder_conf"].update(source_pitch=True, source_pitch_normalisation="utterance")
    cfg = config_from_dict(cfg)
    seen, grad = [], []
    real_forward = type(_pitch_model()).forward

    def spy(self, wav, speaker, *args, pitch_stats=None, **kwargs):
        seen.append((self.training, pitch_stats))
        grad.append(torch.is_grad_enabled())
        return real_forward(self, wav, speaker, *args, pitch_stats=pitch_stats, **kwargs)

    monkeypatch.setattr(type(_pitch_model()), "forward", spy)
    train_dir, dev_dir = tiny_corpus / "data" / "train", tiny_corpus / "data" / "dev"
    training.train(cfg, train_dir, dev_dir, tmp_path / "exp", progress=False)
    dd = read_data_dir(train_dir)
    batches = CropBatches(dd, dd.speakers, SR, 4, 2048, seed=cfg.train_conf.seed)
    steps = [stats for is_training, stats in seen if is_training]
    assert len(steps) == 6
    for step, stats in enumerate(steps):
        expected = torch.cat([utterance_log_f0_stats(torch.from_numpy(batches.audio(i))[None], SR, 64)
                              for i in batches.utterance_indices(step)])
        torch.testing.assert_close(stats, expected)
    assert [s is not None and s.shape[1] == 2 for t, s in seen if not t] == [True] * (len(seen) - 6)
    assert len(seen) > 6                                # validation ran, with statistics
    assert [g for (t, _), g in zip(seen, grad)] == [t for t, _ in seen]   # and without gradients


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
    assert info["decoder"]["source_pitch_voicing"] == "periodicity"
    assert "conditioned on the source's pitch (voicing: periodicity)" in format_description(info)
    smooth = _pitch_model(source_pitch_voicing="none", source_pitch_smoothing_ms=100)
    save_checkpoint(tmp_path / "s.pt", {"config": smooth.cfg.to_dict(), "speakers": ["a", "b", "c"],
                                        "sample_rate": SR, "hop": smooth.hop, "model": smooth.state_dict(), "step": 0})
    info = describe_checkpoint(tmp_path / "s.pt")
    assert info["decoder"]["source_pitch_smoothing_ms"] == 100
    assert ("conditioned on the source's pitch (voicing: none; contour averaged over 100 ms)"
            in format_description(info))
    per_utt = _pitch_model(source_pitch_normalisation="utterance")
    save_checkpoint(tmp_path / "u.pt", {"config": per_utt.cfg.to_dict(), "speakers": ["a", "b", "c"],
                                        "sample_rate": SR, "hop": per_utt.hop, "model": per_utt.state_dict(), "step": 0})
    info = describe_checkpoint(tmp_path / "u.pt")
    assert info["decoder"]["source_pitch_normalisation"] == "utterance"
    assert ("conditioned on the source's pitch (voicing: periodicity; trained on crops normalised over their "
            "utterance)" in format_description(info))


def test_with_intonation_scales_the_contour_alone():
    from vqspeech.pitch import with_intonation

    feats = torch.tensor([[[1.0, -2.0, 0.0, 3.0], [0.9, 0.8, 0.1, 0.95], [1.0, 1.0, 1.0, 1.0]]])
    half = with_intonation(feats, 0.5)
    torch.testing.assert_close(half[0, 0], torch.tensor([0.5, -1.0, 0.0, 1.5]))
    assert torch.equal(half[:, 1:], feats[:, 1:])     # voicing and "known" as given
    assert feats[0, 0, 1] == -2.0                      # the input is not modified
    assert torch.equal(with_intonation(feats[0], 0.0)[0], torch.zeros(4))  # (3, F) too: a monotone
    for bad in (-0.1, 3.5):
        with pytest.raises(ValueError, match="within"):
            with_intonation(feats, bad)


def test_conversion_scales_or_drops_the_source_intonation(tiny_corpus):
    from vqspeech.conversion import convert, decode_codes, encode_wav
    from vqspeech.errors import UserError
    from vqspeech.generation import SamplingOptions
    from vqspeech.pitch import with_intonation

    model = _pitch_model()
    wav = load_audio((tiny_corpus / "data" / "test" / "wav.scp").read_text().splitlines()[0].split()[1], SR)[:8192]
    opts = SamplingOptions(seed=5)
    codes = encode_wav(model, wav, sample_rate=SR)
    pitch = model.source_pitch(torch.from_numpy(wav)[None])[0]
    assert pitch[0].abs().sum() > 0                     # the utterance has a contour to scale
    outputs = {}
    for intonation in (1.0, 0.5, 0.0, None):
        outputs[intonation] = convert(model, wav, 2, SR, opts, intonation=intonation).wav
        expected = decode_codes(model, codes, 2, opts, pitch=None if intonation is None
                                else with_intonation(pitch, intonation))[: len(wav)]
        np.testing.assert_array_equal(outputs[intonation], expected)
    np.testing.assert_array_equal(outputs[1.0], convert(model, wav, 2, SR, opts).wav)  # 1: the default
    for a, b in ((1.0, 0.5), (0.5, 0.0), (0.0, None)):
        assert not np.array_equal(outputs[a], outputs[b])
    with pytest.raises(UserError, match=r"intonation: expected 'none' or a scale within \[0, 3\], got 4"):
        convert(model, wav, 2, SR, opts, intonation=4.0)
    plain = tiny_spectral()
    torch.manual_seed(0)
    plain_model = build_model(plain, num_speakers=3).eval()
    convert(plain_model, wav, 2, SR, opts)               # the default asks nothing of a pitch-less model
    for intonation in (0.5, None):
        with pytest.raises(UserError, match="does not read the source's pitch"):
            convert(plain_model, wav, 2, SR, opts, intonation=intonation)


def _saved(model, path, speakers=("a", "b", "c")):
    from vqspeech.checkpoint import save_checkpoint

    save_checkpoint(path, {"config": model.cfg.to_dict(), "speakers": list(speakers), "sample_rate": SR,
                           "hop": model.hop, "model": model.state_dict(), "step": 0})
    return path


def test_convert_voice_intonation_matches_the_api_and_refuses_what_a_model_cannot_do(tiny_corpus, tmp_path, capsys):
    import vqspeech
    from vqspeech.bin.convert_voice import main as convert_main

    model_path = _saved(_pitch_model(), tmp_path / "pitch.pt")
    src = (tiny_corpus / "data" / "test" / "wav.scp").read_text().splitlines()[0].split()[1]
    api = vqspeech.load(model_path)
    for value, scale in (("0.5", 0.5), ("none", None)):
        out = tmp_path / f"out_{value}.wav"
        assert convert_main(["--model", str(model_path), "--input", src, "--target-speaker", "c",
                             "--output", str(out), "--seed", "3", "--intonation", value]) == 0
        np.testing.assert_allclose(load_audio(out, SR), api.convert(src, "c", seed=3, intonation=scale),
                                   atol=1 / 32767)  # the wav file is 16-bit
    for bad in ("3.5", "-1", "lively"):
        with pytest.raises(SystemExit) as exc:
            convert_main(["--model", str(model_path), "--input", src, "--target-speaker", "c",
                          "--output", str(tmp_path / "x.wav"), "--intonation", bad])
        assert exc.value.code == 2
        assert "argument --intonation" in capsys.readouterr().err
    torch.manual_seed(0)
    plain_path = _saved(build_model(tiny_spectral(), num_speakers=3).eval(), tmp_path / "plain.pt")
    out = tmp_path / "plain.wav"
    assert convert_main(["--model", str(plain_path), "--input", src, "--target-speaker", "c",
                         "--output", str(out), "--intonation", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["convert-voice: error: --intonation 0: this model does not read the source's pitch (train one "
                   "with decoder_conf.source_pitch: true, e.g. egs/mini/conf/default_pitch.yaml)"]
    assert not out.exists()


def test_the_demo_offers_an_intonation_slider_for_a_pitch_model(tiny_corpus, tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    import vqspeech
    from vqspeech import demo_app

    model_path = _saved(_pitch_model(), tmp_path / "pitch.pt")
    src = (tiny_corpus / "data" / "test" / "wav.scp").read_text().splitlines()[0].split()[1]
    monkeypatch.setattr(demo_app, "_allowed", lambda path: True)
    conv = demo_app.Converter(str(model_path))
    (sr, pcm), _, _ = conv(src, "b", 1.0, 4, None, 0.0)
    expected = vqspeech.load(model_path).convert(src, "b", seed=4, intonation=0.0)
    np.testing.assert_array_equal(pcm, (np.clip(expected, -1, 1) * 32767).astype(np.int16))
    (_, as_spoken), _, _ = conv(src, "b", 1.0, 4)
    assert not np.array_equal(pcm, as_spoken)
    (_, codes_alone), _, _ = conv(src, "b", 1.0, 4, None, 0.0, False)   # the checkbox off: the slider is moot
    expected = vqspeech.load(model_path).convert(src, "b", seed=4, intonation=None)
    np.testing.assert_array_equal(codes_alone, (np.clip(expected, -1, 1) * 32767).astype(np.int16))
    assert not np.array_equal(codes_alone, pcm) and not np.array_equal(codes_alone, as_spoken)
    ids = [c.get("props", {}).get("elem_id") for c in demo_app.build_app(str(model_path)).config["components"]]
    assert "intonation" in ids and "follow-pitch" in ids
    plain_path = _saved(build_model(tiny_spectral(), num_speakers=3).eval(), tmp_path / "plain.pt")
    ids = [c.get("props", {}).get("elem_id") for c in demo_app.build_app(str(plain_path)).config["components"]]
    assert "intonation" not in ids and "follow-pitch" not in ids and "convert-button" in ids


def test_vc_eval_converts_with_the_intonation_asked_for_and_records_it(tiny_corpus, tmp_path):
    pytest.importorskip("resemblyzer")
    import json

    import vqspeech
    from vqspeech.bin.vc_eval import main

    test = tiny_corpus / "data" / "test"
    speakers = sorted({line.split()[1] for line in (test / "utt2spk").read_text().splitlines()})[:3]
    model_path = _saved(_pitch_model(), tmp_path / "pitch.pt", speakers)
    out = tmp_path / "vc"
    assert main(["--model", str(model_path), "--data-dir", str(test), "--centroid-data", str(tiny_corpus / "data" / "train"),
                 "--output-dir", str(out), "--max-sentences", "1", "--max-pairs", "1", "--no-progress",
                 "--analysis-threads", "0", "--intonation", "0"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["intonation"] == 0.0
    assert "intonation the source's x 0;" in (out / "report.md").read_text()
    (wav_path,) = (out / "wav").rglob("*.wav")
    source_speaker, target_speaker = wav_path.parent.name.split("_to_")
    scp = dict(line.split(maxsplit=1) for line in (test / "wav.scp").read_text().splitlines())
    expected = vqspeech.load(model_path).convert(scp[wav_path.stem], target_speaker, intonation=0.0)
    np.testing.assert_allclose(load_audio(wav_path, SR), expected, atol=1 / 32767)
