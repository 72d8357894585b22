"""LibriSpeech preparation on a LibriSpeech-shaped tree (FLAC audio, one .trans.txt per chapter),
and its recipe with Montreal-Forced-Aligner-style TextGrids for one evaluation subset only."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vqspeech.alignments import PhoneInterval, read_ctm, write_textgrid
from vqspeech.bin.prepare_librispeech import main
from vqspeech.corpus_prep.librispeech import prepare_librispeech
from vqspeech.errors import UserError
from vqspeech.kaldi_data_dir import read_data_dir

REPO = Path(__file__).resolve().parents[1]
TREE = {"train-clean-100": {"19": ("198",), "26": ("495", "496")}, "dev-clean": {"84": ("121123",)},
        "test-clean": {"61": ("70968",)}}


def _fake_librispeech(root: Path, per_chapter: int = 3) -> list[str]:
    """The subsets of TREE with ``per_chapter`` utterances per chapter (a tone each; the last one
    of chapter 19-198 has no transcript line). Returns the transcribed utterance ids."""
    utts = []
    for subset, speakers in TREE.items():
        for spk, chapters in speakers.items():
            for chapter in chapters:
                folder = root / subset / spk / chapter
                folder.mkdir(parents=True)
                lines = []
                for i in range(per_chapter):
                    utt = f"{spk}-{chapter}-{i:04d}"
                    sf.write(folder / f"{utt}.flac", 0.1 * np.sin(np.arange(8000 + 800 * i) * 0.05), 16000)
                    if not (utt == f"19-198-{per_chapter - 1:04d}"):
                        lines.append(f"{utt} CHAPTER {chapter} LINE {i}")
                        utts.append(utt)
                (folder / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return utts


def test_subsets_become_data_directories(tmp_path, capsys):
    _fake_librispeech(tmp_path / "LibriSpeech")
    assert main(["--librispeech-root", str(tmp_path / "LibriSpeech"), "--out-dir", str(tmp_path / "data"),
                 "--dev-every", "4"]) == 0
    printed = capsys.readouterr().out
    # train-clean-100: 2 + 3 + 3 transcribed; the 4th and 8th in C order go to dev
    assert ("train=6 utterances of 2 speakers, dev=2 utterances of 1 speaker, dev_clean=3 utterances of 1 "
            "speaker, test_clean=3 utterances of 1 speaker") in printed
    assert "left out 1 audio files without a transcript line" in printed
    data = {n: read_data_dir(tmp_path / "data" / n, check_audio=True)
            for n in ("train", "dev", "dev_clean", "test_clean")}
    assert data["dev"].utterances == ["26-495-0001", "26-496-0002"]
    assert data["train"].utterances == ["19-198-0000", "19-198-0001", "26-495-0000", "26-495-0002",
                                        "26-496-0000", "26-496-0001"]
    assert data["test_clean"].utt2spk["61-70968-0002"] == "61"
    assert data["dev_clean"].text["84-121123-0001"] == "CHAPTER 121123 LINE 1"
    assert data["train"].audio_of("26-495-0002")[0].endswith("train-clean-100/26/495/26-495-0002.flac")


def test_bad_trees_are_one_line_errors(tmp_path, capsys):
    root = tmp_path / "LibriSpeech"
    _fake_librispeech(root)
    with pytest.raises(UserError, match=r"train-other-500: subset not found \(found: dev-clean, test-clean, "
                                        r"train-clean-100\)"):
        prepare_librispeech(root, tmp_path / "data", ["train-other-500"])
    with pytest.raises(UserError, match="dev-clean: a subset cannot be both trained on and evaluated"):
        prepare_librispeech(root, tmp_path / "data", ["train-clean-100", "dev-clean"])
    with pytest.raises(UserError, match="none for dev with --dev-every 100"):
        prepare_librispeech(root, tmp_path / "data")
    (root / "test-clean" / "61" / "70968" / "61-70968.trans.txt").write_text("61-70968-0000 WORDS\n61-70968-0001\n")
    assert main(["--librispeech-root", str(root), "--out-dir", str(tmp_path / "data"), "--dev-every", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "61-70968.trans.txt:2: expected '<utterance> <words>'" in err, err
    assert not (tmp_path / "data").exists()  # every subset is read before anything is written


def test_recipe_imports_alignments_for_the_sets_they_cover(tmp_path):
    """egs/librispeech stages 0-1: the eval subsets become the recipe's test sets; TextGrids for
    dev-clean only fill data/dev_clean/phones.ctm and leave the other sets as they are."""
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")
    shutil.copytree(REPO / "egs" / "librispeech", tmp_path / "egs" / "librispeech", symlinks=True,
                    ignore=shutil.ignore_patterns("data", "exp"))
    shutil.copytree(REPO / "egs" / "vctk" / "conf", tmp_path / "egs" / "vctk" / "conf")
    _fake_librispeech(tmp_path / "LibriSpeech")
    phones = [PhoneInterval(0.0, 0.2, "sil"), PhoneInterval(0.2, 0.5, "AH0")]
    for i in range(3):
        write_textgrid(tmp_path / "mfa" / "84" / f"84-121123-{i:04d}.TextGrid", {"phones": phones}, 0.5 + 0.05 * i)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "python": sys.executable}
    res = subprocess.run(["bash", "egs/librispeech/run.sh", "--stage", "0", "--stop-stage", "1",
                          "--librispeech-root", "LibriSpeech", "--data-args", "--dev-every 4", "--alignments", "mfa"],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    data = tmp_path / "egs" / "librispeech" / "data"
    assert "data/test_clean: OK" in res.stdout and "data/dev_clean: OK" in res.stdout
    ctm = read_ctm(data / "dev_clean" / "phones.ctm")
    assert sorted(ctm) == [f"84-121123-{i:04d}" for i in range(3)] and ctm["84-121123-0000"][1].phone == "AH0"
    assert "data/test_clean: none of the 3 alignment files names one of its utterances" in res.stdout
    assert not (data / "test_clean" / "phones.ctm").exists() and not (data / "train" / "phones.ctm").exists()
