"""Untrusted ids and paths: nothing is written outside the output folder or over an input."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from vqspeech.checkpoint import load_checkpoint, save_checkpoint
from vqspeech.kaldi_data_dir import read_data_dir
from vqspeech.errors import CheckpointError, DataDirError, UserError
from vqspeech.ids import check_id, id_problem, path_in, same_file


def _cli(*args, cwd=None):
    res = subprocess.run([sys.executable, "-m", "vqspeech", *args], capture_output=True, text=True, cwd=cwd)
    return res.returncode, res.stdout, res.stderr.strip()


@pytest.mark.parametrize("value,ok", [
    ("awb_h001", True), ("slt", True), ("a.b-c", True), ("ünïcode", True), ("..x", True),
    ("", False), (".", False), ("..", False), ("../../evil", False), ("a/b", False), ("a\\b", False),
    ("a\0b", False), ("a\tb", False), ("a\x1bb", False), ("a b", False), ("a\u2028b", False),
])
def test_id_rule(value, ok):
    assert (id_problem(value) is None) == ok
    if not ok:
        with pytest.raises(UserError, match="is not a valid id"):
            check_id(value, "f:3", "utterance id")


def test_path_in_refuses_escapes_and_planted_links(tmp_path):
    out = tmp_path / "out" / "sub"
    out.mkdir(parents=True)
    assert path_in(out, "a_to_slt.wav") == out / "a_to_slt.wav"
    assert path_in(out, "x_to_y", "u.wav") == out / "x_to_y" / "u.wav"  # new sub-folders are fine
    for parts in [("../../evil_to_slt.wav",), ("..", "x.wav"), ("/etc/passwd",), (".",)]:
        with pytest.raises(UserError, match="refusing to write outside the output folder"):
            path_in(out, *parts)
    (out / "link_to_slt.wav").symlink_to(tmp_path / "elsewhere.wav")
    with pytest.raises(UserError, match="outside"):
        path_in(out, "link_to_slt.wav")


def test_same_file_by_path_and_inode(tmp_path):
    a = tmp_path / "a.wav"
    a.write_bytes(b"x")
    os.link(a, tmp_path / "hard.wav")
    assert same_file(a, tmp_path / "." / "a.wav") and same_file(a, tmp_path / "hard.wav")
    assert not same_file(a, tmp_path / "b.wav")


def _hostile_data_dir(d, wav):
    d.mkdir()
    (d / "wav.scp").write_text(f"../../evil {wav}\n")
    (d / "utt2spk").write_text("../../evil ..\n")
    (d / "spk2utt").write_text(".. ../../evil\n")


def test_hostile_data_dir_is_refused_everywhere(trained_tiny, tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(wav, 0.1 * np.sin(np.arange(8000) / 7), 16000)
    d = tmp_path / "dd"
    _hostile_data_dir(d, wav)
    with pytest.raises(DataDirError, match=r"wav.scp:1: recording id '../../evil' is not a valid id"):
        read_data_dir(d)
    code, out, err = _cli("validate-data-dir", str(d))
    assert code == 2 and err.count("\n") == 0 and "wav.scp:1:" in err and "OK" not in out
    (d / "wav.scp").write_text(f"ok {wav}\n")
    (d / "utt2spk").write_text("ok ..\n")
    code, _, err = _cli("validate-data-dir", str(d))
    assert code == 2 and "utt2spk:1: speaker id '..' is not a valid id" in err
    _hostile = tmp_path / "dd2"
    _hostile_data_dir(_hostile, wav)
    bo = tmp_path / "bo" / "x"
    code, _, err = _cli("convert-voice", "--model", str(trained_tiny / "checkpoint.pt"), "--data-dir", str(_hostile),
                        "--target-speaker", "slt", "--output-dir", str(bo))
    assert code == 2 and err.count("\n") == 0 and "not a valid id" in err
    assert not list(tmp_path.rglob("evil*")) and not bo.exists()


def test_decode_refuses_a_traversing_codes_line(trained_tiny, tmp_path):
    codes = tmp_path / "codes.txt"
    codes.write_text("../../escape " + " ".join(["1"] * 40) + "\n")
    outd = tmp_path / "outd" / "sub"
    code, _, err = _cli("decode", "--model", str(trained_tiny / "checkpoint.pt"), "--codes", str(codes),
                        "--speaker", "slt", "--output-dir", str(outd))
    assert code == 2 and err.count("\n") == 0 and f"{codes}:1: utterance id '../../escape' is not a valid id" in err
    assert not list(tmp_path.rglob("escape*"))


def test_phone_report_refuses_a_traversing_codes_line(trained_tiny, tiny_corpus, tmp_path):
    codes = tmp_path / "codes.txt"
    codes.write_text("../x 1 2 3\n")
    code, _, err = _cli("phone-report", "--model", str(trained_tiny / "checkpoint.pt"), "--codes", str(codes),
                        "--data-dir", str(tiny_corpus / "data" / "test"), "--output-dir", str(tmp_path / "rep"))
    assert code == 2 and "not a valid id" in err and not (tmp_path / "rep").exists()


def test_checkpoint_with_a_hostile_speaker_name(trained_tiny, tmp_path):
    ckpt = torch.load(trained_tiny / "checkpoint.pt", weights_only=True)
    ckpt["speakers"] = ["../../x"] + ckpt["speakers"][1:]
    save_checkpoint(tmp_path / "bad.pt", {k: v for k, v in ckpt.items() if k not in ("format", "version")})
    with pytest.raises(CheckpointError, match=r"speaker '../../x' is not a valid id"):
        load_checkpoint(tmp_path / "bad.pt")


def test_convert_voice_never_overwrites_its_input(trained_tiny, tmp_path):
    ckpt = str(trained_tiny / "checkpoint.pt")
    same = tmp_path / "same.wav"
    sf.write(same, 0.1 * np.sin(np.arange(4000) / 7), 16000)
    before = same.read_bytes()
    for out in (same, tmp_path / "." / "same.wav"):
        code, _, err = _cli("convert-voice", "--model", ckpt, "--input", str(same), "--target-speaker", "slt",
                            "--output", str(out))
        assert code == 2 and err.count("\n") == 0 and "would overwrite the input" in err
        assert same.read_bytes() == before
    os.link(same, tmp_path / "hard.wav")  # another name, the same inode
    code, _, err = _cli("convert-voice", "--model", ckpt, "--input", str(same), "--target-speaker", "slt",
                        "--output", str(tmp_path / "hard.wav"))
    assert code == 2 and "would overwrite the input" in err and same.read_bytes() == before
    # batch: one job's output is another job's input; nothing runs
    other = tmp_path / "other.wav"
    shutil.copy(same, other)
    jobs = tmp_path / "jobs.txt"
    jobs.write_text(f"{same} slt {tmp_path / 'new.wav'}\n{other} slt {same}\n")
    code, _, err = _cli("convert-voice", "--model", ckpt, "--list", str(jobs))
    assert code == 2 and "would overwrite the input" in err
    assert same.read_bytes() == before and not (tmp_path / "new.wav").exists()
    # --overwrite is the explicit way to replace the recording
    code, _, err = _cli("convert-voice", "--model", ckpt, "--input", str(same), "--target-speaker", "slt",
                        "--output", str(same), "--overwrite")
    assert code == 0, err
    assert same.read_bytes() != before and sf.info(str(same)).frames == 4000


def test_inputs_shorter_than_one_code(trained_tiny, tiny_corpus, tmp_path):
    ckpt = str(trained_tiny / "checkpoint.pt")
    short = tmp_path / "short.wav"
    sf.write(short, np.full(10, 0.1, np.float32), 16000)
    code, _, err = _cli("convert-voice", "--model", ckpt, "--input", str(short), "--target-speaker", "slt",
                        "--output", str(tmp_path / "o.wav"))
    assert code == 2 and err.count("\n") == 0 and "short.wav: 10 samples" in err and "shorter than one code" in err
    assert not (tmp_path / "o.wav").exists()
    # encode: the short utterance is reported as a failure, the rest are encoded
    d = tmp_path / "dd"
    shutil.copytree(tiny_corpus / "data" / "test", d)
    first = (d / "wav.scp").read_text().splitlines()[0].split()
    (d / "wav.scp").write_text((d / "wav.scp").read_text().replace(first[1], str(short)))
    code, _, err = _cli("encode", "--model", ckpt, "--data-dir", str(d), "--output", str(tmp_path / "c.txt"))
    assert code == 1 and "short.wav: 10 samples" in err
    lines = (tmp_path / "c.txt").read_text().splitlines()
    assert len(lines) == len((d / "utt2spk").read_text().splitlines()) - 1
    assert first[0] not in {line.split()[0] for line in lines}
