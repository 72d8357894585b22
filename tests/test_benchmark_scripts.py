"""Every benchmark script, run as a script: a user error is one line and exit status 2 (as for the
commands), never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["training.py", "analysis.py", "generation.py"])
def test_benchmark_scripts_report_a_bad_input_in_one_line(script, tmp_path):
    """A config or data directory that does not exist is named in the one line."""
    bad = {"training.py": ["--config", str(tmp_path / "none.yaml"), "--device", "cpu"],
           "analysis.py": ["--data-dir", str(tmp_path / "none")],
           "generation.py": ["--config", str(tmp_path / "none.yaml"), "--device", "cpu"]}[script]
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *bad], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if "warn" not in ln.lower()]
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: ") and str(tmp_path) in lines[0], res.stderr
