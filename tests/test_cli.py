"""The command table: every command listed with a description, listed without importing torch; numeric
options checked by the parser."""

import subprocess
import sys

import pytest

from vqspeech.bin.runner import float_at_least, int_at_least
from vqspeech.cli import COMMANDS, _command


def test_help_lists_every_command_without_importing_torch():
    code = ("import sys; from vqspeech.cli import main; rc = main(['--help']); "
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip().endswith("NO-TORCH")
    for name, (_, _, desc) in COMMANDS.items():
        assert f"  {name}" in res.stdout and desc in res.stdout and len(desc) > 10


def test_every_command_resolves_and_has_help(capsys):
    for name in COMMANDS:
        fn = _command(name)
        assert callable(fn)
        try:
            fn(["--help"])
        except SystemExit as exc:  # argparse exits 0 after printing help
            assert exc.code == 0, name
        out = capsys.readouterr().out
        assert "usage:" in out and "--verbose" in out and "(default:" in out, name


def test_unknown_command_is_one_line_exit_2():
    res = subprocess.run([sys.executable, "-m", "vqspeech", "trian"], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "unknown command 'trian'" in res.stderr


@pytest.mark.parametrize("command,option,value,message", [
    ("align", "--jobs", "0", "must be >= 1, got 0"),
    ("convert-voice", "--seed", "-1", "must be >= 0, got -1"),
    ("convert-voice", "--temperature", "0", "must be > 0, got 0"),
    ("convert-voice", "--max-batch", "0", "must be >= 1, got 0"),
    ("convert-voice", "--all-pairs", "0", "must be >= 1, got 0"),
    ("decode", "--temperature", "nan", "must be > 0, got nan"),
    ("demo", "--port", "70000", "must be in [1, 65535], got 70000"),
    ("make-mini-corpus", "--num-sentences", "2", "must be >= 3, got 2"),
    ("make-mini-corpus", "--extra-train-sentences", "-2", "must be >= 0"),
    ("measure-history", "--utterances", "0", "must be >= 1"),
    ("measure-history", "--offset", "-1", "must be >= 0"),
    ("measure-history", "--tolerance", "-0.1", "must be >= 0, got -0.1"),
    ("phone-report", "--frame-shift-ms", "0", "must be > 0"),
    ("phone-report", "--num-codes", "0", "must be >= 1"),
    ("phone-report", "--tolerance-ms", "-1", "must be >= 0"),
    ("phone-report", "--examples", "-1", "must be >= 0"),
    ("prior-report", "--per-speaker", "0", "must be >= 1"),
    ("prior-report", "--seconds", "inf", "must be > 0, got inf"),
    ("sample", "--seconds", "-3", "must be > 0"),
    ("shift-voices", "--sample-rate", "0", "must be >= 1"),
    ("shift-voices", "--jobs", "x", "expected an integer, got 'x'"),
    ("train", "--max-steps", "0", "must be >= 1"),
    ("train", "--until-step", "-5", "must be >= 1"),
    ("train", "--dist-timeout", "0", "must be > 0"),
    ("train-prior", "--max-steps", "0", "must be >= 1"),
    ("train-vocoder", "--until-step", "0", "must be >= 1"),
    ("vc-eval", "--max-sentences", "0", "must be >= 1"),
    ("vc-eval", "--max-pairs", "0", "must be >= 1"),
])
def test_numeric_options_refuse_out_of_range_values(command, option, value, message, capsys):
    """A count of zero, a negative seed or a NaN temperature is refused by the parser, naming the
    option, before any file is read or written."""
    with pytest.raises(SystemExit) as exc:
        _command(command)([option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(("vqspeech ", "convert-voice: ")) and f"argument {option}: {message}" in err, err


def test_bounded_argument_types():
    assert int_at_least(0)("0") == 0 and int_at_least(1, 3)("3") == 3
    assert float_at_least(0)("0") == 0.0 and float_at_least(0, strictly=True)("1e-9") == 1e-9
    for parse, bad in [(int_at_least(1), "0"), (int_at_least(1, 3), "4"), (int_at_least(0), "1.5"),
                       (float_at_least(0), "-1e-9"), (float_at_least(0), "-inf"), (float_at_least(0), "nan"),
                       (float_at_least(1, strictly=True), "1")]:
        with pytest.raises(Exception, match="must be|expected"):
            parse(bad)


@pytest.mark.parametrize("world_size, teardown_runs", [("1", True), ("2", False)])
def test_a_torchrun_worker_leaves_without_interpreter_teardown(world_size, teardown_runs):
    """``exit_entry_point``: a normal exit outside torchrun; in a worker (WORLD_SIZE > 1) the status and
    everything printed come out, but no teardown runs (where gloo's C++ exit now and then aborted)."""
    import os

    code = ("import atexit, sys; from vqspeech.bin.runner import exit_entry_point; atexit.register(print, 'teardown'); "
            "print('done', end=''); sys.stderr.write('err'); exit_entry_point(3)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout a buffered pipe
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(env, WORLD_SIZE=world_size))
    assert res.returncode == 3 and res.stderr == "err"
    assert res.stdout == ("doneteardown\n" if teardown_runs else "done")


@pytest.mark.parametrize("world_size, teardown_runs", [("1", True), ("2", False)])
def test_the_console_script_leaves_a_torchrun_worker_the_same_way(world_size, teardown_runs):
    """``torchrun --no-python vqspeech train ...``: the console script is ``cli.run``, which prints
    what the command prints and, in a worker, skips the teardown as ``python -m vqspeech.bin.train``
    does."""
    import os
    import tomllib
    from pathlib import Path

    from vqspeech import __version__

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["vqspeech"] == "vqspeech.cli:run"
    code = ("import atexit, sys; atexit.register(print, 'teardown'); sys.argv = ['vqspeech', '--version']; "
            "from vqspeech.cli import run; run()")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(env, WORLD_SIZE=world_size))
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout == f"vqspeech {__version__}\n" + ("teardown\n" if teardown_runs else "")
    unknown = subprocess.run([sys.executable, "-m", "vqspeech", "no-such-command"], capture_output=True, text=True,
                             env=dict(env, WORLD_SIZE=world_size))
    assert unknown.returncode == 2 and "unknown command 'no-such-command'" in unknown.stderr
