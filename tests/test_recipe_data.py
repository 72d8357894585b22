"""The mini recipe's data stages, run as a user would run them (bash, --stage/--stop-stage)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vqspeech.kaldi_data_dir import read_data_dir

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


def test_stage_1_imports_alignments_given_relative_to_the_caller(recipe_copy):
    """--alignments (a folder of TextGrids, as the Montreal Forced Aligner writes them) fills the
    phones.ctm a set lacks; a relative path is read from where the user ran run.sh."""
    if shutil.which("flite") is None:
        pytest.skip("flite missing")
    import soundfile as sf

    from vqspeech.alignments import read_ctm, write_textgrid

    res = _run(recipe_copy, "--stage", "0", "--stop-stage", "1", "--data-args", "--num-sentences 4 --speakers awb,slt")
    assert res.returncode == 0, res.stderr
    test = recipe_copy / "data" / "test"
    made = (test / "phones.ctm").read_bytes()
    dd = read_data_dir(test)
    root = recipe_copy.parents[1]
    for utt, intervals in read_ctm(test / "phones.ctm").items():
        duration = sf.info(dd.audio_of(utt)[0]).duration
        write_textgrid(root / "mfa" / dd.utt2spk[utt] / f"{utt}.TextGrid", {"phones": intervals}, duration)
    (test / "phones.ctm").unlink()
    res = subprocess.run(["bash", "egs/mini/run.sh", "--stage", "1", "--stop-stage", "1", "--alignments", "mfa"],
                         cwd=root, capture_output=True, text=True,
                         env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "python": sys.executable})
    assert res.returncode == 0, res.stderr
    assert f"phone alignments of data/test from {root}/mfa" in res.stdout
    assert "phone alignments of data/train" not in res.stdout  # it has its phones.ctm
    assert (test / "phones.ctm").read_bytes() == made


def test_unknown_option_is_an_error(recipe_copy):
    res = _run(recipe_copy, "--stage", "0", "--no-such-option", "1")
    assert res.returncode == 2 and "unknown option --no-such-option" in res.stderr


def test_train_stage_trains_from_the_recipe(recipe_copy):
    """Stages 0-2 with a tiny config: the loss falls and the model lands in exp/<tag>."""
    if shutil.which("flite") is None:
        pytest.skip("flite missing")
    import yaml

    sys.path.insert(0, str(Path(__file__).parent))
    from helpers import tiny_config

    cfg = tiny_config(max_steps=150, batch_size=4, segment_samples=2048, log_every=10, val_every=150,
                      checkpoint_every=50, lr=3e-3)
    (recipe_copy / "conf" / "tiny.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    res = _run(recipe_copy, "--stage", "0", "--stop-stage", "2", "--config", "tiny",
               "--data-args", "--num-sentences 4 --speakers awb,slt", "--train-args", "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Stage 2" in res.stdout
    exp = recipe_copy / "exp" / "tiny"
    assert (exp / "checkpoint.pt").is_file() and (exp / "config.yaml").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(exp / "tensorboard"))
    ev.Reload()
    recon = [s.value for s in ev.Scalars("loss/recon")]
    assert recon[-1] < recon[0] - 0.5, recon
    # re-running the stage resumes from the last checkpoint and has nothing left to do
    res = _run(recipe_copy, "--stage", "2", "--stop-stage", "2", "--config", "tiny", "--train-args", "--no-progress")
    assert res.returncode == 0 and "step 150" in res.stdout


def test_vctk_option_parsing(tmp_path):
    """One option parser for the corpus and the shared stages: a missing value is an error (it used to
    loop forever), --help lists the VCTK options, and the options reach local/data.sh."""
    run = REPO / "egs" / "vctk" / "run.sh"
    res = subprocess.run(["bash", str(run), "--vctk-root"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "option --vctk-root needs a value" in res.stderr
    res = subprocess.run(["bash", str(run), "--help"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and all(f"--{o}" in res.stderr for o in ("vctk-root", "mic", "heldout-speakers"))
    res = subprocess.run(["bash", str(run), "--stage", "0", "--stop-stage", "0", "--vctk-root", str(tmp_path),
                          "--mic", "mic2"], capture_output=True, text=True, timeout=60,
                         env={**__import__("os").environ, "python": sys.executable})
    assert res.returncode == 2 and f"{tmp_path}: not a VCTK root" in res.stderr
    assert "--vctk-root " + str(tmp_path) + " --mic mic2" in res.stdout
    # a relative --vctk-root is read from the caller's folder, not the recipe's
    (tmp_path / "corpus").mkdir()
    res = subprocess.run(["bash", str(run), "--stage", "0", "--stop-stage", "0", "--vctk-root", "corpus"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={**__import__("os").environ, "python": sys.executable})
    assert res.returncode == 2 and f"{tmp_path}/corpus: not a VCTK root" in res.stderr


def test_config_is_a_path_or_a_name(recipe_copy):
    res = _run(recipe_copy, "--stage", "2", "--stop-stage", "1", "--config", "nonexistent")
    assert res.returncode == 2 and "neither a file nor conf/nonexistent.yaml" in res.stderr
