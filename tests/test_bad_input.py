"""A newcomer's mistakes and a stranger's files: one line naming the file/argument, exit 2, nothing half-written."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vqspeech.alignments import read_ctm, read_htk_lab, read_textgrid, read_timit_phn
from vqspeech.checkpoint import load_checkpoint
from vqspeech.kaldi_data_dir import read_data_dir
from vqspeech.errors import AlignmentError, CheckpointError, DataDirError


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/vqspeech_pwned",))


def _cli(*args):
    res = subprocess.run([sys.executable, "-m", "vqspeech", *args], capture_output=True, text=True)
    return res.returncode, res.stdout, res.stderr.strip()


def test_malicious_pickle_is_refused_not_executed(tmp_path):
    target = "/tmp/vqspeech_pwned"
    if os.path.exists(target):
        os.unlink(target)
    path = tmp_path / "evil.pt"
    torch.save({"format": "vqspeech", "version": 1, "model": _Evil()}, path)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(path)
    assert not os.path.exists(target)
    code, _, err = _cli("convert-voice", "--model", str(path), "--list-speakers")
    assert code == 2 and err.count("\n") == 0 and "evil.pt: refused to load" in err
    assert not os.path.exists(target)


def test_truncated_and_foreign_checkpoints(trained_tiny, tmp_path):
    raw = (trained_tiny / "checkpoint.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(raw[: len(raw) // 2])
    code, _, err = _cli("convert-voice", "--model", str(tmp_path / "trunc.pt"), "--list-speakers")
    assert code == 2 and "trunc.pt: not a readable checkpoint" in err and "Traceback" not in err
    # Bytes that are no pickle at all (an unknown opcode first) are corrupt, not "unsafe".
    (tmp_path / "noise.pt").write_bytes(bytes([212]) + bytes(range(256)) * 4)
    with pytest.raises(CheckpointError, match=r"noise.pt: not a readable checkpoint \(corrupt or not a torch file"):
        load_checkpoint(tmp_path / "noise.pt")
    torch.save({"format": "vqspeech", "version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="version 99 is not supported"):
        load_checkpoint(tmp_path / "future.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a vqspeech checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


@pytest.mark.parametrize("yaml_text,message", [
    ("train_conf:\n  lr: fast\n", "train_conf.lr: expected a number"),
    ("decoder_conf:\n  layerz: 3\n", "decoder_conf: unknown key layerz"),
    ("decoder_conf:\n  layers: -3\n", "decoder_conf.layers: must be >= 1, got -3"),
    ("quantizer_conf:\n  decay: 1.5\n", "quantizer_conf.decay: must be in [0, 1), got 1.5"),
])
def test_bad_config_cli(tmp_path, tiny_corpus, yaml_text, message):
    (tmp_path / "c.yaml").write_text(yaml_text)
    code, _, err = _cli("train", "--config", str(tmp_path / "c.yaml"), "--train-data",
                        str(tiny_corpus / "data" / "train"), "--exp-dir", str(tmp_path / "exp"))
    assert code == 2 and err.count("\n") == 0 and message in err and "c.yaml" in err
    assert not (tmp_path / "exp").exists()


def test_unknown_speaker_and_bad_audio_leave_nothing(trained_tiny, tmp_path):
    ckpt = str(trained_tiny / "checkpoint.pt")
    sf.write(tmp_path / "in.wav", 0.1 * np.sin(np.arange(16000) / 10), 48000, subtype="PCM_24")
    code, _, err = _cli("convert-voice", "--model", ckpt, "--input", str(tmp_path / "in.wav"),
                        "--target-speaker", "zz", "--output", str(tmp_path / "o.wav"))
    assert code == 2 and "unknown speaker 'zz'" in err and not (tmp_path / "o.wav").exists()
    (tmp_path / "nan.wav").write_bytes(b"")
    sf.write(tmp_path / "nan.wav", np.array([0.0, np.inf, 0.0], np.float32), 16000, subtype="FLOAT")
    code, _, err = _cli("convert-voice", "--model", ckpt, "--input", str(tmp_path / "nan.wav"),
                        "--target-speaker", "slt", "--output", str(tmp_path / "o.wav"))
    assert code == 2 and "nan.wav: audio contains NaN" in err and not list(tmp_path.glob("*o.wav*"))
    # --verbose shows the traceback for bug reports
    code, _, err = _cli("convert-voice", "--model", ckpt, "--input", str(tmp_path / "nan.wav"),
                        "--target-speaker", "slt", "--output", str(tmp_path / "o.wav"), "--verbose")
    assert code == 2 and "Traceback" in err


def test_data_dir_missing_wav_via_cli(tmp_path, tiny_corpus):
    import shutil

    d = tmp_path / "d"
    shutil.copytree(tiny_corpus / "data" / "dev", d)
    first = (d / "wav.scp").read_text().splitlines()[0].split()
    (d / "wav.scp").write_text((d / "wav.scp").read_text().replace(first[1], "/nonexistent/x.wav"))
    code, _, err = _cli("validate-data-dir", str(d))
    assert code == 2 and f"{d / 'wav.scp'}:1: audio file not found: /nonexistent/x.wav" in err


# --- arbitrary bytes never crash the parsers with anything but their documented error --------------
@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_parsers_on_arbitrary_bytes(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("fuzz")
    for name, reader, err in [("x.ctm", read_ctm, AlignmentError), ("x.phn", read_timit_phn, AlignmentError),
                              ("x.lab", read_htk_lab, AlignmentError), ("x.TextGrid", read_textgrid, AlignmentError)]:
        (d / name).write_bytes(data)
        try:
            reader(d / name)
        except err:
            pass
    (d / "wav.scp").write_bytes(data)
    (d / "utt2spk").write_bytes(data)
    (d / "spk2utt").write_bytes(data)
    try:
        read_data_dir(d)
    except DataDirError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text("abc_", min_size=1, max_size=4), st.text("ab", min_size=1, max_size=2)),
                max_size=6))
def test_data_dir_parser_on_structured_garbage(tmp_path_factory, rows):
    d = tmp_path_factory.mktemp("dd")
    (d / "wav.scp").write_text("".join(f"{u} /x/{u}.wav\n" for u, _ in rows))
    (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in rows))
    (d / "spk2utt").write_text("".join(f"{s} {u}\n" for u, s in rows))
    try:
        read_data_dir(d)
    except DataDirError:
        pass


def _write_cases(d):
    """name -> (writer, expected exit status, expected message or None)."""
    rng = np.random.default_rng(0)
    tone = lambda sr, ch=1: (0.2 * np.sin(np.arange(int(sr * 0.5)) * 0.05)[:, None] * np.ones(ch)).astype(np.float32)  # noqa: E731
    sf.write(d / "full.flac", rng.uniform(-.3, .3, 16000), 16000)
    raw = (d / "full.flac").read_bytes()
    cases = {
        "empty.wav": (lambda p: p.write_bytes(b""), 2, "cannot read audio"),
        "not_audio.wav": (lambda p: p.write_text("hello\n" * 50), 2, "cannot read audio"),
        "zero.wav": (lambda p: sf.write(p, np.zeros(0, np.float32), 16000), 2, "audio is empty"),
        "nan.wav": (lambda p: sf.write(p, np.array([0, np.nan, 0], np.float32), 16000, subtype="FLOAT"), 2, "NaN"),
        "truncated.flac": (lambda p: p.write_bytes(raw[:200]), 2, "truncated.flac"),
        "8k.wav": (lambda p: sf.write(p, tone(8000), 8000), 0, None),
        "22k.wav": (lambda p: sf.write(p, tone(22050), 22050), 0, None),
        "48k_stereo_24bit.wav": (lambda p: sf.write(p, tone(48000, 2), 48000, subtype="PCM_24"), 0, None),
        "surround_5_1.wav": (lambda p: sf.write(p, tone(16000, 6), 16000), 0, None),
        "float.wav": (lambda p: sf.write(p, tone(16000), 16000, subtype="FLOAT"), 0, None),
    }
    for name, (writer, _, _) in cases.items():
        writer(d / name)
    return cases


def test_audio_input_table(trained_tiny, tmp_path, capsys):
    from vqspeech.bin.convert_voice import main as convert_main

    cases = _write_cases(tmp_path)
    ckpt = str(trained_tiny / "checkpoint.pt")
    for name, (_, status, message) in cases.items():
        out = tmp_path / f"out_{name}.wav"
        code = convert_main(["--model", ckpt, "--input", str(tmp_path / name), "--target-speaker", "slt",
                             "--output", str(out)])
        err = capsys.readouterr().err.strip()
        if status == 2 and code == 0 and name == "truncated.flac":
            continue  # libsndfile may decode the frames before the cut; that is a valid outcome
        assert code == status, (name, err)
        if status == 2:
            assert err.count("\n") == 0 and name in err and message in err and "Traceback" not in err, (name, err)
            assert not out.exists() and not list(tmp_path.glob(f".out_{name}*"))
        else:
            assert sf.info(str(out)).samplerate == 16000


# --- ids: any text either fails the id rule or names a file inside the output folder ----------------
@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=12))
def test_valid_ids_never_escape_the_output_folder(tmp_path_factory, text):
    from vqspeech.errors import UserError
    from vqspeech.ids import id_problem, path_in

    out = tmp_path_factory.mktemp("ids") / "out"
    if id_problem(text) is not None:
        assert text in ("", ".", "..") or any(c in text for c in "/\\\0") or any(
            not c.isprintable() or c.isspace() for c in text)
        return
    try:
        target = path_in(out, f"{text}_to_slt.wav")
    except UserError:
        return  # e.g. an id that would make a name longer than the file system allows
    assert out.resolve() in target.resolve().parents


def test_spectral_model_bad_inputs(tmp_path, tiny_corpus):
    """The spectral path's CLI inputs: unknown vocoder, short input, unknown speaker: one line, exit 2."""
    import sys as _sys

    _sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from test_spectral import tiny_spectral

    from vqspeech.train import train

    train(tiny_spectral(max_steps=2, checkpoint_every=2, audio_samples=0), tiny_corpus / "data" / "train", None,
          tmp_path / "exp", progress=False)
    ckpt = str(tmp_path / "exp" / "checkpoint.pt")
    sf.write(tmp_path / "in.wav", 0.1 * np.sin(np.arange(8000) / 9), 16000)
    sf.write(tmp_path / "short.wav", np.zeros(5, np.float32), 16000)
    cases = [(["--input", str(tmp_path / "in.wav"), "--vocoder", "hifigan"], "invalid choice: 'hifigan'"),
             (["--input", str(tmp_path / "short.wav")], "shorter than one code"),
             (["--input", str(tmp_path / "in.wav"), "--target-speaker", "nobody"], "unknown speaker 'nobody'")]
    for extra, message in cases:
        args = ["convert-voice", "--model", ckpt, "--target-speaker", "slt", "--output", str(tmp_path / "o.wav")]
        code, _, err = _cli(*args, *extra)
        assert code == 2 and message in err and "Traceback" not in err and "\n" not in err, err
        assert not (tmp_path / "o.wav").exists()
