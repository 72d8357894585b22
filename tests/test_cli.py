"""The command table: every command listed with a description, listed without importing torch."""

import subprocess
import sys

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
