import numpy as np
import pytest
import soundfile as sf

from vqspeech.cli import main as cli_main
from vqspeech.kaldi_data_dir import DataDir, Segment, read_data_dir, write_data_dir
from vqspeech.errors import DataDirError


@pytest.fixture
def good_dir(tmp_path):
    wavs = tmp_path / "wav"
    wavs.mkdir()
    table = {}
    for utt in ["spkA_1", "spkA_2", "spkB_1"]:
        sf.write(wavs / f"{utt}.wav", np.zeros(1600, dtype=np.float32), 16000)
        table[utt] = str(wavs / f"{utt}.wav")
    dd = DataDir(wav_scp=table, utt2spk={u: u.split("_")[0] for u in table},
                 text={u: "hello world" for u in table}, utt2dur={u: 0.1 for u in table})
    d = tmp_path / "data"
    write_data_dir(d, dd)
    return d


def test_roundtrip(good_dir):
    dd = read_data_dir(good_dir, check_audio=True)
    assert dd.speakers == ["spkA", "spkB"]
    assert dd.spk2utt == {"spkA": ["spkA_1", "spkA_2"], "spkB": ["spkB_1"]}
    assert (good_dir / "spk2utt").read_text() == "spkA spkA_1 spkA_2\nspkB spkB_1\n"
    assert dd.text["spkB_1"] == "hello world" and dd.utt2dur["spkA_1"] == pytest.approx(0.1)


def _expect(d, pattern, check_audio=False):
    with pytest.raises(DataDirError, match=pattern) as info:
        read_data_dir(d, check_audio=check_audio)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_unsorted_names_file_and_line(good_dir):
    (good_dir / "utt2spk").write_text("spkA_1 spkA\nspkB_1 spkB\nspkA_2 spkA\n")
    msg = _expect(good_dir, "not sorted")
    assert msg.startswith(f"{good_dir / 'utt2spk'}:3:")


def test_duplicate_key(good_dir):
    (good_dir / "wav.scp").write_text((good_dir / "wav.scp").read_text() + "spkB_1 /x.wav\n")
    assert ":4: duplicate key 'spkB_1' (first on line 3)" in _expect(good_dir, "duplicate")


def test_spk2utt_disagrees(good_dir):
    (good_dir / "spk2utt").write_text("spkA spkA_1\nspkB spkB_1\n")
    msg = _expect(good_dir, "disagrees with utt2spk")
    assert "spk2utt:1:" in msg and "spkA_2" in msg


def test_speaker_prefix(good_dir):
    (good_dir / "utt2spk").write_text("spkA_1 spkA\nspkA_2 spkB\nspkB_1 spkB\n")
    _expect(good_dir, "utt2spk:2: utterance id 'spkA_2' does not start with its speaker id 'spkB'")


def test_missing_wav(good_dir):
    (good_dir.parent / "wav" / "spkA_2.wav").unlink()
    msg = _expect(good_dir, "audio file not found", check_audio=True)
    assert "wav.scp:2:" in msg


def test_non_utf8_text(good_dir):
    (good_dir / "text").write_bytes(b"spkA_1 ok\nspkA_2 caf\xe9\nspkB_1 ok\n")
    _expect(good_dir, r"text:2: line is not valid UTF-8")


def test_text_missing_utterance_and_bad_utt2dur(good_dir):
    (good_dir / "text").write_text("spkA_1 a\nspkB_1 b\n")
    _expect(good_dir, "utt2spk:2: utterance 'spkA_2' has no transcript")
    (good_dir / "text").write_text("spkA_1 a\nspkA_2 a\nspkB_1 b\n")
    (good_dir / "utt2dur").write_text("spkA_1 0.1\nspkA_2 -3\nspkB_1 0.1\n")
    _expect(good_dir, "utt2dur:2: duration must be a positive number")


def test_segments(tmp_path, good_dir):
    dd = read_data_dir(good_dir)
    rec = {"recA": dd.wav_scp["spkA_1"]}
    seg = DataDir(wav_scp=rec, utt2spk={"spkA_x": "spkA", "spkA_y": "spkA"},
                  segments={"spkA_x": Segment("recA", 0.0, 0.05), "spkA_y": Segment("recA", 0.05, 0.1)})
    d = tmp_path / "seg"
    write_data_dir(d, seg)
    got = read_data_dir(d, check_audio=True)
    assert got.audio_of("spkA_y")[1:] == (0.05, 0.1)
    (d / "segments").write_text("spkA_x recA 0.0 0.05\nspkA_y recA 0.05 0.02\n")
    _expect(d, "segments:2: need 0 <= start < end")
    (d / "segments").write_text("spkA_x recA 0.0 0.05\nspkA_y recB 0.05 0.1\n")
    _expect(d, "segments:2: recording 'recB' is not in wav.scp")
    (d / "segments").write_text("spkA_x recA 0.0 0.05\nspkA_y recA 0.05 3.0\n")
    _expect(d, "segments:2: segment ends at 3.000s, past the end", check_audio=True)


def test_cli_one_line_error_and_status(good_dir, capsys):
    assert cli_main(["validate-data-dir", str(good_dir)]) == 0
    assert "OK: 3 utterances, 2 speakers" in capsys.readouterr().out
    (good_dir / "utt2spk").write_text("spkB_1 spkB\nspkA_1 spkA\nspkA_2 spkA\n")
    assert cli_main(["validate-data-dir", str(good_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "utt2spk:2: not sorted" in err and "Traceback" not in err
    assert cli_main(["fix-data-dir", str(good_dir)]) == 0
    assert cli_main(["validate-data-dir", str(good_dir)]) == 0
