"""Converting to a voice the model never heard: speaker_conditioning: reference (issue: one-shot
conversion).  Tiny models; resemblyzer (the eval extra) provides the d-vectors."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from vqspeech.config import config_from_dict
from vqspeech.conversion import decode_codes
from vqspeech.generation import SamplingOptions, generate_classes
from vqspeech.models import build_model

from helpers import tiny_config, train_without_last_speaker

pytest.importorskip("resemblyzer", reason="resemblyzer (the eval extra) makes the reference embeddings")


def _reference_model(decoder="wavenet", seed=0):
    d = tiny_config().to_dict()
    d["speaker_conditioning"] = "reference"
    if decoder == "spectral":
        d["decoder"] = "spectral"
        d["decoder_conf"] = {"n_mels": 20, "n_fft": 256, "frame_hop": 16, "channels": 16, "layers": 2,
                             "speaker_dim": 4}
    torch.manual_seed(seed)
    m = build_model(config_from_dict(d), num_speakers=3).eval()
    for p in m.decoder.parameters():
        p.data.mul_(3.0)
    m.speaker_refs.copy_(torch.nn.functional.normalize(torch.randn(3, 256), dim=1))
    return m


def test_reference_embeddings_and_ids_give_the_same_speaker_vectors():
    m = _reference_model()
    ids = torch.tensor([2, 0])
    assert torch.allclose(m.speaker_vectors(ids), m.speaker_vectors(m.speaker_refs[ids]))
    assert m.speakers is None and m.speaker_vectors(torch.randn(5, 256)).shape == (5, 4)
    table = build_model(tiny_config(), num_speakers=3)
    with pytest.raises(ValueError, match="reference audio needs a model trained with speaker_conditioning"):
        table.speaker_vectors(torch.randn(1, 256))


@pytest.mark.parametrize("method", ["numba", "naive", "naive-window", "cuda-graph-eager", "triton"])
def test_a_reference_voice_runs_through_every_generation_method(method):
    m = _reference_model()
    codes = torch.randint(0, 16, (2, 5))
    ref = torch.nn.functional.normalize(torch.randn(2, 256), dim=1)
    opts = SamplingOptions(seed=3)
    expected = generate_classes(m, codes, ref, opts=opts, method="reference")
    assert expected.shape == (2, 5 * m.hop)
    if method == "cuda-graph-eager":
        from vqspeech.generation.cuda_graph import generate_cuda_graph

        out = generate_cuda_graph(m, codes, ref, 5 * m.hop, opts.uniforms(2, 5 * m.hop), opts, capture=False)
    else:
        if method == "triton":
            pytest.importorskip("triton")
        out = generate_classes(m, codes, ref, opts=opts, method=method)
    assert torch.equal(out, expected)
    # a different voice changes the output
    assert not torch.equal(generate_classes(m, codes, -ref, opts=opts, method="reference"), expected)


def test_spectral_reference_model_decodes_to_an_embedding():
    m = _reference_model("spectral")
    codes = torch.randint(0, 16, (40,))  # 640 samples: longer than the STFT's padding
    e = np.asarray(torch.nn.functional.normalize(torch.randn(256), dim=0))
    a = decode_codes(m, codes, e)
    b = decode_codes(m, codes, 1)  # by id: the training speaker's mean d-vector
    assert a.shape == b.shape == (40 * m.hop,) and not np.allclose(a, b)


# --------------------------------------------------------------------------- checks on references
def _wav(path, seconds, sr=16000, silent=False, seed=0):
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t) if silent else 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    sf.write(path, x.astype(np.float32), sr)
    return path


def test_bad_references_are_one_line_errors(tmp_path, tiny_corpus):
    from vqspeech.errors import UserError
    from vqspeech.speaker_reference import reference_embedding

    with pytest.raises(UserError, match="silent"):
        reference_embedding([_wav(tmp_path / "quiet.wav", 2.0, silent=True)])
    with pytest.raises(UserError, match="below the 8000 Hz"):
        reference_embedding([_wav(tmp_path / "low.wav", 2.0, sr=4000)])
    with pytest.raises(UserError, match="cannot read the reference audio"):
        (tmp_path / "junk.wav").write_bytes(b"not audio")
        reference_embedding([tmp_path / "junk.wav"])
    real = (tiny_corpus / "data" / "test" / "wav.scp").read_text().split("\n")[0].split()[1]
    x, sr = sf.read(real)
    mid = len(x) // 2
    sf.write(tmp_path / "short.wav", x[mid - int(0.3 * sr):mid + int(0.3 * sr)], sr)  # 0.6 s from the middle
    with pytest.raises(UserError, match=r"s of speech after trimming silence; a reference voice needs at least 1 s"):
        reference_embedding([tmp_path / "short.wav"])
    e = reference_embedding([real])
    assert e.shape == (256,) and abs(np.linalg.norm(e) - 1) < 1e-5


# --------------------------------------------------------------------------- trained, end to end
def _cli(*args):
    res = subprocess.run([sys.executable, "-m", "vqspeech", *args], capture_output=True, text=True)
    return res.returncode, res.stdout, res.stderr.strip()


@pytest.fixture(scope="module")
def reference_model(tiny_corpus, tmp_path_factory):
    """A tiny reference model trained on the tiny corpus without one speaker."""
    out = tmp_path_factory.mktemp("ref")
    d = tiny_config(max_steps=60, batch_size=4, segment_samples=2048, checkpoint_every=60, audio_samples=0,
                    val_every=1000).to_dict()
    d["speaker_conditioning"] = "reference"
    res, heldout = train_without_last_speaker(tiny_corpus, out, config_from_dict(d))
    return out / "exp", heldout, res


def test_training_sets_the_speakers_mean_references_and_resumes_them(reference_model):
    from vqspeech.checkpoint import load_model

    exp, heldout, res = reference_model
    lm = load_model(exp / "checkpoint.pt")
    assert heldout not in lm.speakers
    norms = lm.model.speaker_refs.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)  # each speaker's mean d-vector, unit norm
    bank = torch.load(exp / "speaker_refs.pt", weights_only=True)
    assert bank["speakers"] == lm.speakers and len(bank["embeddings"]) == len(lm.speakers)


def test_convert_voice_to_an_unheard_voice(reference_model, tiny_corpus, tmp_path):
    exp, heldout, _ = reference_model
    test = tiny_corpus / "data" / "test"
    lines = [ln.split() for ln in (test / "wav.scp").read_text().splitlines()]
    refs = [p for u, p in lines if u.startswith(heldout + "_")][:2]
    src = next(p for u, p in lines if not u.startswith(heldout + "_"))
    model = str(exp / "checkpoint.pt")
    code, stdout, err = _cli("convert-voice", "--model", model, "--input", src, "--target-audio", *refs,
                             "--output", str(tmp_path / "out.wav"))
    assert code == 0, err
    x, sr = sf.read(tmp_path / "out.wav")
    assert sr == 16000 and abs(len(x) - len(sf.read(src)[0])) <= 16
    # batch: every utterance of a data dir to the reference voice, named after the first reference
    code, stdout, err = _cli("convert-voice", "--model", model, "--data-dir", str(test), "--target-audio", refs[0],
                             "--output-dir", str(tmp_path / "batch"), "--no-progress")
    assert code == 0, err
    stem = refs[0].rsplit("/", 1)[-1][:-4]
    assert len(list((tmp_path / "batch").glob(f"*_to_{stem}.wav"))) == len(lines)
    # a table model refuses reference audio; both targets at once is an error
    code, _, err = _cli("convert-voice", "--input", src, "--target-audio", refs[0], "--output", str(tmp_path / "x.wav"))
    assert code == 2 and err.count("\n") == 0 and "conditions on a table of training speakers" in err
    code, _, err = _cli("convert-voice", "--model", model, "--input", src, "--target-audio", refs[0],
                        "--target-speaker", "awb", "--output", str(tmp_path / "x.wav"))
    assert code == 2 and "not both" in err and not (tmp_path / "x.wav").exists()


def test_demo_converts_to_an_uploaded_voice(reference_model, tiny_corpus, monkeypatch):
    pytest.importorskip("gradio")
    from vqspeech import demo_app

    exp, heldout, _ = reference_model
    lines = [ln.split() for ln in (tiny_corpus / "data" / "test" / "wav.scp").read_text().splitlines()]
    ref = next(p for u, p in lines if u.startswith(heldout + "_"))
    src = next(p for u, p in lines if not u.startswith(heldout + "_"))
    monkeypatch.setattr(demo_app, "_allowed", lambda path: True)
    conv = demo_app.Converter(str(exp / "checkpoint.pt"))
    (sr, pcm), _, info = conv(src, conv.lm.speakers[0], 1.0, 0, ref)
    assert sr == 16000 and pcm.dtype == np.int16 and len(pcm) > 0 and "the reference voice" in info


def test_vc_eval_scores_the_held_out_speaker(reference_model, tiny_corpus, tmp_path):
    from vqspeech.bin.vc_eval import main

    exp, heldout, _ = reference_model
    out = tmp_path / "vc"
    assert main(["--model", str(exp / "checkpoint.pt"), "--data-dir", str(tiny_corpus / "data" / "test"),
                 "--centroid-data", str(tiny_corpus / "data" / "train"), "--output-dir", str(out),
                 "--max-sentences", "1", "--no-progress"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["unseen_speakers"] == [heldout] and heldout in rep["speakers"]
    unseen = rep["overall"]["converted_unseen"]
    assert unseen["n"] == len(rep["speakers"]) - 1
    assert -1 <= unseen["similarity_nearest_training_speaker"] <= 1 and -1 <= unseen["speaker_similarity"] <= 1
    assert "unheard voice" in (out / "report.md").read_text()


def test_the_python_api_converts_to_reference_audio_as_the_cli_does(reference_model, tiny_corpus, tmp_path):
    import vqspeech
    from vqspeech.audio import load_audio
    from vqspeech.errors import UserError

    exp, heldout, _ = reference_model
    lines = [ln.split() for ln in (tiny_corpus / "data" / "test" / "wav.scp").read_text().splitlines()]
    refs = [p for u, p in lines if u.startswith(heldout + "_")][:2]
    src = next(p for u, p in lines if not u.startswith(heldout + "_"))
    model = vqspeech.load(exp / "checkpoint.pt", method="numba")
    assert model.takes_reference_audio
    code, _, err = _cli("convert-voice", "--model", str(exp / "checkpoint.pt"), "--input", src, "--method", "numba",
                        "--target-audio", *refs, "--output", str(tmp_path / "cli.wav"))
    assert code == 0, err
    cli, _ = sf.read(tmp_path / "cli.wav", dtype="float32")
    out = model.convert(src, reference=refs)
    assert out.shape == cli.shape and np.abs(np.clip(out, -1, 1) - cli).max() <= 1 / 32767
    # the references as arrays at their own rate give the same voice (one resampling more: not bit-exact)
    as_arrays = [(load_audio(r, 22050).astype(np.float64), 22050) for r in refs]
    by_path, by_array = model.embed_voice(refs), model.embed_voice(as_arrays)
    assert by_path.shape == (256,) and float(by_path @ by_array) > 0.999
    assert float(by_path @ model.embed_voice(src)) < 0.99  # another voice's recording is elsewhere
    with pytest.raises(UserError, match=r"^reference\[0\]: sample rate 4000 Hz is below the 8000 Hz"):
        model.convert(src, reference=[(load_audio(refs[0], 4000), 4000)])
    with pytest.raises(UserError, match=r"^reference\[1\]: expected a path or an \(array, sample_rate\) pair"):
        model.convert(src, reference=[as_arrays[0], "x"])
