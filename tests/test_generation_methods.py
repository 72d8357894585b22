"""``vqspeech generation-methods`` and the registry's report behind it (vqspeech.generation.registry)."""

import json

import pytest
import torch

from vqspeech.bin import generation_methods
from vqspeech.generation import BACKENDS, default_method
from vqspeech.generation.registry import format_method_report, method_report


def test_the_report_has_every_method_once_and_marks_the_default_that_commands_use():
    cpu = torch.device("cpu")
    rows = method_report(cpu)
    assert [r["method"] for r in rows] == list(BACKENDS)
    defaults = [r["method"] for r in rows if r["default"]]
    assert defaults == [default_method(cpu)]
    by_name = {r["method"]: r for r in rows}
    assert by_name[defaults[0]]["runs"] and by_name[defaults[0]]["why_not"] is None
    numba = by_name["numba"]
    assert numba["runs"] and numba["exact"] and numba["segments"] == 16 and numba["why_not"] is None
    cuda_graph = by_name["cuda-graph"]  # a CUDA-only backend, asked about the CPU
    assert not cuda_graph["runs"] and cuda_graph["why_not"] == "needs --device cuda" and not cuda_graph["default"]
    assert by_name["numba-gemm"]["segments"] == BACKENDS["numba-gemm"].default_fold()
    assert not by_name["bf16-cpu"]["exact"]


def test_a_backend_this_cpu_cannot_run_says_why_in_the_reports_words(pretend_cpu):
    """An AVX-512 CPU without AVX512_BF16 (cpu flags pretended): none of the C kernels runs, each
    row gives the reason its --method error gives, and numba-gemm is the default."""
    pretend_cpu("avx512f")
    rows = {r["method"]: r for r in method_report(torch.device("cpu"))}
    assert rows["bf16-cpu"]["why_not"] == "the bf16-cpu generator needs a CPU with avx512_bf16 (this one has none)"
    assert rows["amx-cpu"]["why_not"] == ("the amx-cpu generator needs a CPU with avx512_bf16 and amx_tile and "
                                          "amx_bf16 (this one has none)")
    assert rows["avx2-cpu"]["why_not"] == "the avx2-cpu generator needs a CPU with avx2 and fma (this one has none)"
    assert rows["numba-gemm"]["default"]
    assert not any(rows[m]["runs"] for m in ("bf16-cpu", "amx-cpu", "avx2-cpu"))
    text = format_method_report(list(rows.values()), torch.device("cpu"))
    assert f"* numba-gemm    runs, {BACKENDS['numba-gemm'].default_fold()} segments: " in text
    assert "  bf16-cpu      does not run here: the bf16-cpu generator needs a CPU with avx512_bf16" in text


def test_the_command_prints_lines_or_json_and_refuses_a_device_in_one_line(capsys):
    assert generation_methods.main([]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith("generation methods on cpu") and len(lines) == 1 + len(BACKENDS)
    assert sum(line.startswith("* ") for line in lines[1:]) == 1
    assert f"* {default_method(torch.device('cpu'))} " in text
    assert generation_methods.main(["--json"]) == 0
    assert json.loads(capsys.readouterr().out) == method_report(torch.device("cpu"))
    assert generation_methods.main(["--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert err == "vqspeech generation-methods: error: --device: unknown device 'gpu'\n"
    if not torch.cuda.is_available():
        assert generation_methods.main(["--device", "cuda"]) == 2
        assert "no CUDA device is available" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_on_cuda_the_cpu_kernels_do_not_run_and_a_cuda_method_is_the_default():
    rows = {r["method"]: r for r in method_report(torch.device("cuda"))}
    assert rows[default_method(torch.device("cuda"))]["default"]
    assert rows["cuda-graph"]["runs"] and not rows["bf16-cpu"]["runs"] and not rows["numba"]["runs"]
