"""benchmarks/triton_resources.py compiles the Triton kernels for an H100/H200 (sm_90) on this machine,
without a GPU, and reads their registers and spills: the training kernels must compile and must not
spill (with 4 warps the gate pair's backward did: 255 registers and a spilled stack)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
triton = pytest.importorskip("triton", reason="triton is not installed (pip install -e .[gpu])")


def test_training_kernels_compile_for_sm90_without_spilling(tmp_path):
    if not (Path(triton.__file__).parent / "backends/nvidia/bin/cuobjdump").is_file():
        pytest.skip("this triton has no NVIDIA backend tools")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "cache")  # compile for real, not from an earlier run's cache
    out = tmp_path / "resources.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks/triton_resources.py"), "--json", str(out)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    kernels = json.loads(out.read_text())["kernels"]
    assert len(kernels) == 5
    for name, r in kernels.items():
        assert 0 < r["registers"] <= 255, name
        if "training" in name:
            assert r["spilled_bytes"] == 0, name
    assert kernels["gate pair, backward (training)"]["warps"] == 8


def test_the_interpreter_is_refused_in_one_line():
    env = dict(os.environ, TRITON_INTERPRET="1")
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks/triton_resources.py")], capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == ("triton_resources.py: error: TRITON_INTERPRET is set: "
                                                   "the interpreter replaces the kernels; run without it")
