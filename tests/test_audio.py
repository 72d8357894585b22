import numpy as np
import pytest
import soundfile as sf
import torch

from vqspeech.audio import load_audio, mulaw_decode, mulaw_encode, save_audio
from vqspeech.errors import AudioError


def test_mulaw_known_values_and_range():
    x = torch.tensor([-1.0, 0.0, 1.0])
    assert mulaw_encode(x).tolist() == [0, 128, 255]
    assert mulaw_encode(x.numpy()).tolist() == [0, 128, 255]
    assert mulaw_decode(torch.tensor([0, 255])).tolist() == pytest.approx([-1.0, 1.0])


def test_mulaw_roundtrip_error_is_small_relative_to_amplitude():
    x = torch.linspace(-1, 1, 10001)
    y = mulaw_decode(mulaw_encode(x))
    # mu-law step near amplitude a is about a * ln(256) * 2 / 255 (+ tiny step at 0)
    bound = (x.abs() * np.log(256) * 2 / 255 + 2e-4) * 0.6
    assert bool(((y - x).abs() <= bound).all())
    np.testing.assert_allclose(mulaw_decode(mulaw_encode(x.numpy())), y.numpy(), atol=1e-6)


@pytest.mark.parametrize("sr,channels,subtype,fmt", [
    (16000, 1, "PCM_16", "WAV"), (48000, 2, "PCM_24", "WAV"), (8000, 1, "FLOAT", "WAV"),
    (22050, 6, "PCM_16", "FLAC"), (44100, 1, "PCM_24", "FLAC"),
])
def test_load_any_rate_and_channels_to_mono_16k(tmp_path, sr, channels, subtype, fmt):
    t = np.arange(sr) / sr  # one second
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    data = np.stack([tone] * channels, axis=1)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, data, sr, subtype=subtype, format=fmt)
    wav = load_audio(path, 16000)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) - 16000) <= 1
    assert np.abs(wav).max() == pytest.approx(0.5, abs=0.02)
    # still a 440 Hz tone after resampling
    spec = np.abs(np.fft.rfft(wav))
    assert abs(np.argmax(spec) * 16000 / len(wav) - 440) < 2


def test_save_audio_is_atomic_and_roundtrips(tmp_path):
    x = np.sin(np.linspace(0, 100, 1600)).astype(np.float32) * 0.3
    save_audio(tmp_path / "y.wav", x)
    assert [p.name for p in tmp_path.iterdir()] == ["y.wav"]
    np.testing.assert_allclose(load_audio(tmp_path / "y.wav"), x, atol=1e-4)


def test_segment_reading(tmp_path):
    x = np.arange(16000, dtype=np.float32) / 16000
    sf.write(tmp_path / "r.wav", x, 16000, subtype="FLOAT")
    seg = load_audio(tmp_path / "r.wav", start=0.25, end=0.5)
    assert len(seg) == 4000 and seg[0] == pytest.approx(0.25)
    with pytest.raises(AudioError, match="past the end"):
        load_audio(tmp_path / "r.wav", start=0.5, end=2.0)


def test_bad_audio_raises_naming_the_file(tmp_path):
    cases = {}
    cases["empty.wav"] = b""
    cases["text.wav"] = b"this is not audio at all\n" * 10
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "folder.wav").mkdir()
    sf.write(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32), 16000)
    sf.write(tmp_path / "nan.wav", np.array([0.1, np.nan, 0.2], dtype=np.float32), 16000, subtype="FLOAT")
    sf.write(tmp_path / "full.flac", np.random.default_rng(0).uniform(-.5, .5, 32000), 16000)
    raw = (tmp_path / "full.flac").read_bytes()
    (tmp_path / "trunc.flac").write_bytes(raw[: len(raw) // 3])
    for name, pattern in [("empty.wav", "cannot read"), ("text.wav", "cannot read"), ("zero.wav", "empty"),
                          ("nan.wav", "NaN"), ("missing.wav", "not found"),
                          ("folder.wav", "is a directory, not an audio file")]:
        with pytest.raises(AudioError, match=pattern) as info:
            load_audio(tmp_path / name)
        assert name in str(info.value) and "\n" not in str(info.value)
    # A truncated flac either errors cleanly or decodes the frames that survive.
    try:
        out = load_audio(tmp_path / "trunc.flac")
        assert 0 < len(out) < 32000
    except AudioError as exc:
        assert "trunc.flac" in str(exc)


def test_outputs_get_normal_permissions(tmp_path):
    import os

    save_audio(tmp_path / "p.wav", np.zeros(10, np.float32))
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "p.wav").stat().st_mode & 0o777 == 0o666 & ~umask
