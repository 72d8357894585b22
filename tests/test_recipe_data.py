"""The mini recipe's data stages, run as a user would run them (bash, --stage/--stop-stage)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vqspeech.datadir import read_data_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def recipe_copy(tmp_path):
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")
    shutil.copytree(REPO / "egs" / "mini", tmp_path / "egs" / "mini",
                    ignore=shutil.ignore_patterns("data", "exp", "corpus"))
    return tmp_path / "egs" / "mini"


def _run(cwd, *args):
    return subprocess.run(["bash", "run.sh", *args], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "python": sys.executable})


def test_stages_0_1_build_valid_data(recipe_copy):
    if shutil.which("flite") is None:
        pytest.skip("flite missing")
    res = _run(recipe_copy, "--stage", "0", "--stop-stage", "1", "--data-args", "--num-sentences 4 --speakers awb,slt")
    assert res.returncode == 0, res.stderr
    assert "Stage 0" in res.stdout and "Stage 1" in res.stdout and "Stage 2" not in res.stdout
    assert str(recipe_copy / "data" / "train") in res.stdout  # says where it wrote the data
    dd = read_data_dir(recipe_copy / "data" / "train", check_audio=True)
    assert dd.speakers == ["awb", "slt"] and len(dd.utt2spk) == 4
    # stage 1 alone re-validates and catches a newcomer's mistake with file and line
    (recipe_copy / "data" / "dev" / "utt2spk").write_text("slt_h003 slt\nawb_h003 awb\n")
    res = _run(recipe_copy, "--stage", "1", "--stop-stage", "1")
    assert res.returncode == 2
    assert "data/dev/utt2spk:2: not sorted" in res.stderr and "Traceback" not in res.stderr


def test_unknown_option_is_an_error(recipe_copy):
    res = _run(recipe_copy, "--stage", "0", "--no-such-option", "1")
    assert res.returncode == 2 and "unknown option --no-such-option" in res.stderr
