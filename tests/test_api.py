"""The Python API (vqspeech.load / SpeechModel): the CLIs' samples, resampling, one-line errors."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import vqspeech
from vqspeech.audio import load_audio, resample
from vqspeech.bin.convert_voice import main as convert_main
from vqspeech.bin.encode import main as encode_main
from vqspeech.codes_file import read_codes
from vqspeech.demo_app import example_files
from vqspeech.errors import UserError
from vqspeech.kaldi_data_dir import read_data_dir

PCM = 1 / 32767  # convert-voice writes 16-bit PCM


@pytest.fixture(scope="module")
def shipped():
    return vqspeech.load()


def test_import_stays_light_until_the_api_is_used():
    code = ("import sys, vqspeech; light = 'torch' not in sys.modules; vqspeech.load; "
            "print(light, 'torch' in sys.modules, vqspeech.SpeechModel.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "SpeechModel"]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        vqspeech.nothing


def test_shipped_model_describes_itself(shipped):
    assert shipped.speakers == ["awb", "kal", "ked", "rms", "slt"]
    assert shipped.sample_rate == 16000 and shipped.hop == 64 and shipped.code_rate == 250.0
    assert shipped.num_codes == 64 and not shipped.takes_reference_audio
    assert "spectral decoder" in repr(shipped)
    info = shipped.describe()  # model-info's description of the same file
    assert info["path"] == str(shipped.path) and info["speakers"] == shipped.speakers
    assert info["codes_per_second"] == shipped.code_rate and info["num_codes"] == shipped.num_codes
    assert info["step"] == 4000 and info["decoder"]["type"] == "spectral"


def test_convert_gives_convert_voices_samples(shipped, tmp_path):
    src = example_files()[0]
    assert convert_main(["--input", str(src), "--target-speaker", "slt", "--output", str(tmp_path / "cli.wav"),
                         "--seed", "3"]) == 0
    cli, sr = sf.read(tmp_path / "cli.wav", dtype="float32")
    out = shipped.convert(src, "slt", seed=3)
    assert sr == shipped.sample_rate and out.dtype == np.float32 and out.shape == cli.shape
    assert np.abs(np.clip(out, -1, 1) - cli).max() <= PCM  # the same samples up to the file's quantization
    assert np.abs(out).max() > 0.01
    other_seed = shipped.convert(src, "slt", seed=4)  # Griffin-Lim's initial phases
    assert np.abs(other_seed - out).max() > 0.01


def test_arrays_at_any_rate_equal_files_at_that_rate(shipped, tmp_path):
    wav = load_audio(example_files()[0], 16000)
    at_22k = resample(wav, 16000, 22050)
    sf.write(tmp_path / "x22.flac", at_22k, 22050, subtype="PCM_24")
    from_file = shipped.convert(tmp_path / "x22.flac", "kal")
    from_array = shipped.convert(load_audio(tmp_path / "x22.flac", 22050), "kal", sample_rate=22050)
    assert np.array_equal(from_file, from_array)
    # a torch tensor and float64 are accepted as the same waveform
    assert np.array_equal(shipped.convert(torch.from_numpy(wav.astype(np.float64)), "kal"), shipped.convert(wav, "kal"))


def test_encode_then_decode_is_convert(shipped):
    wav = load_audio(example_files()[0], 16000)
    codes = shipped.encode(wav)
    assert codes.dtype == np.int64 and codes.shape == (-(-len(wav) // shipped.hop),)
    assert 0 <= codes.min() and codes.max() < shipped.num_codes
    # the whole utterance through the quantizer at once (encode works in chunks)
    with torch.no_grad():
        whole = shipped.model.encode(torch.from_numpy(wav)[None])["codes"]
    assert np.array_equal(codes, whole[0].numpy())
    decoded = shipped.decode(codes, "rms", seed=1)
    assert decoded.shape == (len(codes) * shipped.hop,)
    assert np.array_equal(decoded[: len(wav)], shipped.convert(wav, "rms", seed=1))


def test_a_wavenet_model_samples_as_the_cli_does(trained_tiny, tiny_corpus, tmp_path):
    ckpt = trained_tiny / "checkpoint.pt"
    dd = read_data_dir(tiny_corpus / "data" / "test")
    utt = dd.utterances[0]
    src = dd.audio_of(utt)[0]
    model = vqspeech.load(ckpt, method="numba")
    assert model.method == "numba" and "wavenet decoder" in repr(model)
    target = model.speakers[-1]
    assert convert_main(["--model", str(ckpt), "--input", src, "--target-speaker", target, "--method", "numba",
                         "--seed", "5", "--temperature", "0.8", "--output", str(tmp_path / "cli.wav")]) == 0
    cli, _ = sf.read(tmp_path / "cli.wav", dtype="float32")
    out = model.convert(src, target, seed=5, temperature=0.8)
    assert out.shape == cli.shape and np.abs(np.clip(out, -1, 1) - cli).max() <= PCM
    assert np.abs(model.convert(src, target, seed=6, temperature=0.8) - out).max() > 0.01
    # encode equals what `vqspeech encode` writes for the data dir
    assert encode_main(["--model", str(ckpt), "--data-dir", str(tiny_corpus / "data" / "test"),
                        "--output", str(tmp_path / "codes.txt")]) == 0
    assert np.array_equal(model.encode(src), np.asarray(read_codes(tmp_path / "codes.txt")[utt]))


@pytest.mark.parametrize("call, message", [
    (lambda m, w: m.convert(w, "nobody"), r"^speaker: unknown speaker 'nobody'; valid speakers: awb, kal"),
    (lambda m, w: m.convert(w), r"^give a target speaker or reference audio"),
    (lambda m, w: m.convert(w, "slt", reference="r.wav"), r"^give a target speaker or reference audio"),
    (lambda m, w: m.convert(w, reference="r.wav"), r"^reference: this model conditions on a table"),
    (lambda m, w: m.convert(w[None], "slt"), r"^audio: expected a 1-D \(mono\) waveform, got shape \(1, "),
    (lambda m, w: m.convert(w[:0], "slt"), r"^audio: the waveform is empty"),
    (lambda m, w: m.convert((w * 1000).astype(np.int16), "slt"), r"^audio: expected float samples"),
    (lambda m, w: m.convert(np.full(800, np.nan, np.float32), "slt"), r"^audio: the waveform contains NaN"),
    (lambda m, w: m.convert(w[:10], "slt"), r"^audio: 10 samples .* is shorter than one code"),
    (lambda m, w: m.convert([0.0] * 800, "slt"), r"^audio: expected a file path or a 1-D array, got list"),
    (lambda m, w: m.convert(w, "slt", sample_rate=0), r"^sample_rate: the sample rate must be a positive integer"),
    (lambda m, w: m.convert(example_files()[0], "slt", sample_rate=16000), r"^sample_rate: a file carries its own"),
    (lambda m, w: m.convert("missing.wav", "slt"), r"^missing.wav: audio file not found"),
    (lambda m, w: m.convert(w, "slt", temperature=0), r"^temperature: temperature must be > 0"),
    (lambda m, w: m.decode(np.array([1, 64]), "slt"), r"^codes: values must lie in \[0, 64\), got 1\.\.64"),
    (lambda m, w: m.decode(np.array([0.5]), "slt"), r"^codes: expected a non-empty 1-D integer array"),
    (lambda m, w: m.decode(np.zeros((2, 2), int), "slt"), r"^codes: expected a non-empty 1-D integer array"),
])
def test_misuse_is_a_one_line_error_naming_the_argument(shipped, call, message):
    wav = load_audio(example_files()[0], 16000)[:1600]
    with pytest.raises(UserError, match=message) as err:
        call(shipped, wav)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"path": "nothing.pt"}, r"^nothing.pt: checkpoint not found"),
    ({"device": "gpu7"}, r"^device: unknown device 'gpu7'"),
    ({"method": "fastest"}, r"^method: unknown generation method 'fastest'"),
    ({"vocoder_model": "v.pt"}, r"^v.pt: checkpoint not found"),
])
def test_load_refuses_bad_arguments_in_one_line(kwargs, message):
    with pytest.raises(UserError, match=message) as err:
        vqspeech.load(**kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has CUDA")
def test_load_on_cuda_without_cuda_says_so():
    with pytest.raises(UserError, match=r"^device cuda: no CUDA device is available"):
        vqspeech.load(device="cuda")


def test_the_readme_example_runs(tmp_path, monkeypatch):
    """The README's "From Python" block, run as written on the shipped example utterance."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"## From Python\n.*?```python\n(.*?)```", readme, re.S).group(1)
    src = example_files()[0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.wav").write_bytes(src.read_bytes())
    space = {"wav": resample(load_audio(src, 16000), 16000, 44100)}
    exec(compile(block, "README.md (From Python)", "exec"), space)
    assert space["model"].speakers == ["awb", "kal", "ked", "rms", "slt"]
    y, sr = sf.read(tmp_path / "out.wav")
    assert sr == 16000 and abs(len(y) - sf.info(str(src)).frames) <= 1 and np.abs(y).max() > 0.01  # via 44.1 kHz
    assert len(space["audio"]) == len(space["codes"]) * 64
