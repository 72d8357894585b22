"""Hour-scale inputs: streamed encoding equals whole-file encoding and stays in bounded memory."""

import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import torch

from vqspeech.audio import load_audio
from vqspeech.checkpoint import load_model
from vqspeech.conversion import encode_file, encode_wav


@pytest.mark.parametrize("sr,channels", [(16000, 1), (44100, 2), (48000, 6)])
def test_streamed_encoding_equals_whole_file(trained_tiny, tmp_path, sr, channels):
    lm = load_model(trained_tiny / "checkpoint.pt")
    rng = np.random.default_rng(0)
    n = int(sr * 7.3)
    sig = 0.2 * np.sin(np.cumsum(rng.uniform(0.01, 0.2, n)))[:, None] * rng.uniform(0.5, 1, channels)
    path = tmp_path / "long.wav"
    sf.write(path, sig.astype(np.float32), sr, subtype="FLOAT")
    whole, z = encode_wav(lm.model, load_audio(path, 16000), return_features=True)
    streamed, z2 = encode_file(lm.model, path, 16000, chunk_seconds=1.0, return_features=True)
    assert streamed.shape == whole.shape
    assert (streamed == whole).float().mean() > 0.995  # resampling edge rounding may flip a near-tie
    np.testing.assert_allclose(z2, z, atol=2e-3)


def test_ten_minutes_in_bounded_memory(trained_tiny, tmp_path):
    lm = load_model(trained_tiny / "checkpoint.pt")
    path = tmp_path / "ten_minutes.wav"
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as f:
        for _ in range(10):
            f.write((0.1 * np.sin(np.arange(16000 * 60) * 0.03)).astype(np.float32))
    tracemalloc.start()
    codes = encode_file(lm.model, path, 16000, chunk_seconds=10.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert codes.shape == (16000 * 600 // lm.hop,)
    whole_file_bytes = 16000 * 600 * 4
    assert peak < whole_file_bytes / 4, peak  # a fraction of the 38 MB the whole signal would take


def test_chunked_encoding_covers_a_wide_encoders_receptive_field():
    """A log-mel encoder sees ~46 hops; blocks keep that much context, so chunking changes nothing."""
    from vqspeech.config import config_from_dict
    from vqspeech.conversion import encode_wav, encoder_margin
    from vqspeech.models import build_model

    cfg = config_from_dict({"encoder_conf": {"input": "mel", "channels": 16, "kernel_sizes": [5, 5],
                                             "strides": [1, 1], "residual_layers": 4, "latent_dim": 8},
                            "quantizer_conf": {"num_codes": 16}})
    torch.manual_seed(0)
    model = build_model(cfg, 2).eval()
    assert encoder_margin(model) >= model.encoder.receptive_field > 16 * model.hop
    wav = (0.3 * np.random.default_rng(0).standard_normal(16000 * 3)).astype(np.float32)
    whole, f_whole = encode_wav(model, wav, chunk_seconds=60.0, return_features=True)
    chunked, f_chunked = encode_wav(model, wav, chunk_seconds=0.5, return_features=True)
    assert torch.equal(whole, chunked)
    assert np.allclose(f_whole, f_chunked, atol=1e-6)  # with a 16-hop margin: 8.5e-5 apart
