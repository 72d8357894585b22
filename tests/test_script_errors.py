"""The benchmark scripts and the mini recipe's study scripts, run as scripts: a user error is one
line and exit status 2 (as for the commands), never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["benchmarks/training.py", "benchmarks/analysis.py", "benchmarks/generation.py",
                                    "egs/mini/local/quantization_cost.py", "egs/mini/local/vocoder_ceiling.py"])
def test_scripts_report_a_bad_input_in_one_line(script, tmp_path):
    """A config, data directory or checkpoint that does not exist is named in the one line."""
    bad = {"benchmarks/training.py": ["--config", str(tmp_path / "none.yaml"), "--device", "cpu"],
           "benchmarks/analysis.py": ["--data-dir", str(tmp_path / "none")],
           "benchmarks/generation.py": ["--config", str(tmp_path / "none.yaml"), "--device", "cpu"],
           "egs/mini/local/quantization_cost.py": ["--model", str(tmp_path / "none.pt")],
           "egs/mini/local/vocoder_ceiling.py": ["--data-dir", str(tmp_path / "none")]}[script]
    res = subprocess.run([sys.executable, str(ROOT / script), *bad], capture_output=True, text=True, timeout=120,
                         cwd=ROOT / "egs/mini")
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if "warn" not in ln.lower()]
    name = script.rsplit("/", 1)[-1]
    assert len(lines) == 1 and lines[0].startswith(f"{name}: error: ") and str(tmp_path) in lines[0], res.stderr
