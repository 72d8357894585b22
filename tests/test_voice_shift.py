"""shift-voices: new training voices by scaling every frequency, duration and phones kept."""

import numpy as np
import pytest

from vqspeech.alignments import read_ctm
from vqspeech.corpus_prep.voice_shift import read_origins, shift_voice, shifted_speaker
from vqspeech.kaldi_data_dir import read_data_dir


def _peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


def test_shift_scales_every_frequency_and_keeps_the_duration():
    sr = 16000
    t = np.arange(sr) / sr
    x = (0.5 * np.sin(2 * np.pi * 300 * t) + 0.2 * np.sin(2 * np.pi * 1200 * t)).astype(np.float32)
    y = shift_voice(x, sr, 12.0)  # an octave up: 300 -> 600 Hz, 1200 -> 2400 Hz
    assert len(y) == len(x)
    mid = slice(2000, 14000)
    assert abs(_peak_hz(y[mid], sr) - 600) < 10
    spec = np.abs(np.fft.rfft(y[mid] * np.hanning(12000)))
    f = np.fft.rfftfreq(12000, 1 / sr)
    assert spec[(f > 2350) & (f < 2450)].max() > 20 * spec[(f > 1150) & (f < 1250)].max()
    assert abs(_peak_hz(shift_voice(x, sr, -12.0)[mid], sr) - 150) < 10
    assert shift_voice(x, sr, 0) is x


def test_shift_voices_command_writes_a_valid_larger_data_dir(tiny_corpus, tmp_path, capsys):
    from vqspeech.bin.shift_voices import main

    src = tiny_corpus / "data" / "dev"
    dst = tmp_path / "dev_shifted"
    assert main([str(src), str(dst), "--semitones=-3,2", "--jobs", "2"]) == 0
    before, after = read_data_dir(src), read_data_dir(dst, check_audio=True)
    assert len(after.utt2spk) == 3 * len(before.utt2spk)
    assert set(after.speakers) == {shifted_speaker(s, k) for s in before.speakers for k in (0, -3, 2)}
    assert shifted_speaker("awb", 2) == "awb+2st" and shifted_speaker("awb", -3) == "awb-3st"
    utt = before.utterances[0]
    spk = before.utt2spk[utt]
    new = f"{spk}+2st{utt[len(spk):]}"
    assert after.text[new] == before.text[utt] and after.utt2spk[new] == f"{spk}+2st"
    assert read_ctm(dst / "phones.ctm")[new] == read_ctm(src / "phones.ctm")[utt]
    import soundfile as sf

    assert sf.info(after.wav_scp[new]).frames == sf.info(before.audio_of(utt)[0]).frames
    # utt2origin: each utterance, shifted or not, names the one it was made from
    origins = read_origins(dst, after.utterances)
    assert origins[new] == utt and origins[utt] == utt and origins[f"{spk}-3st{utt[len(spk):]}"] == utt
    assert sorted(set(origins.values())) == before.utterances and len(origins) == len(after.utt2spk)


def test_utt2origin_errors_name_the_file_and_line(tiny_corpus, tmp_path):
    from vqspeech.errors import DataDirError

    with pytest.raises(DataDirError, match=r"utt2origin: not found \(vqspeech shift-voices writes it"):
        read_origins(tmp_path, ["a"])
    (tmp_path / "utt2origin").write_text("a a\nb a\n")
    with pytest.raises(DataDirError, match=r"utt2origin:2: utterance 'b' is not in .*utt2spk"):
        read_origins(tmp_path, ["a"])
    (tmp_path / "utt2origin").write_text("a\n")
    with pytest.raises(DataDirError, match=r"utt2origin:1: expected 2 fields, got 1"):
        read_origins(tmp_path, ["a"])


@pytest.mark.parametrize("shifts", ["", "x", "20"])
def test_bad_shifts_are_one_line_errors(tiny_corpus, tmp_path, capsys, shifts):
    from vqspeech.bin.shift_voices import main

    assert main([str(tiny_corpus / "data" / "dev"), str(tmp_path / "o"), "--semitones", shifts]) == 2
    err = capsys.readouterr().err.strip()
    assert "--semitones" in err and "\n" not in err
