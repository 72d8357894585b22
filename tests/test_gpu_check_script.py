"""benchmarks/gpu_check.sh runs on a GPU lent for minutes: every command line it would run must be
accepted by the program it calls, checked here on the CPU by running its step functions with the
Python interpreter replaced by a recorder."""

import argparse
import functools
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks/gpu_check.sh"


def recorded_commands(tmp_path: Path) -> list[list[str]]:
    """The argument vectors the script's steps 1-5 pass to ``$PY``, with its defaults (OUT in tmp_path)."""
    text = SCRIPT.read_text()
    # the step functions and their helpers: from left() to the loop that runs the steps
    functions = text[text.index("left() {"):text.index("# the steps in the order")]
    record = tmp_path / "argv.bin"
    harness = f"""set -u
T0=$(date +%s); DEADLINE=100000; OUT={tmp_path}/out; ROOT={tmp_path}/device; PROBE={tmp_path}/probe
record() {{ printf '%s\\0' "$@" >> {record}; printf '\\1\\0' >> {record}; }}
timeout() {{ shift; "$@"; }}  # the limit, then the command
PY=record
{functions}
for n in 1 2 3 4 5; do "step_$n"; done
"""
    run = subprocess.run(["bash", "-c", harness], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    commands, current = [], []
    for arg in record.read_bytes().decode().split("\0")[:-1]:
        if arg == "\1":
            commands.append(current)
            current = []
        else:
            current.append(arg)
    return commands


class Parsed(Exception):
    """Raised by the patched parse_args once a command line has been accepted."""


def accepted(main, argv: list[str], monkeypatch) -> argparse.Namespace:
    """Run ``main(argv)`` only as far as its argument parser: the parsed namespace, or the parser's
    error (SystemExit) as a test failure."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    try:
        main(argv)
    except Parsed as done:
        return done.args[0]
    except SystemExit as exc:
        pytest.fail(f"{argv}: the parser refused it (exit {exc.code})")
    finally:
        monkeypatch.setattr(argparse.ArgumentParser, "parse_args", original)
    pytest.fail(f"{argv}: never parsed its arguments")


@functools.cache
def benchmark_main(name: str):
    """``benchmarks/<name>.py``'s main, its module loaded once."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(f"gpu_check_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_every_command_of_the_gpu_check_is_accepted(tmp_path, monkeypatch):
    commands = recorded_commands(tmp_path)
    scripts = [c[0] for c in commands if c[0].startswith("benchmarks/")]
    assert scripts == ["benchmarks/triton_variants.py", "benchmarks/training.py", "benchmarks/generation.py"]
    pytest_runs = [c[2:] for c in commands if c[:2] == ["-m", "pytest"]]
    cli_runs = [c[2:] for c in commands if c[:2] == ["-m", "vqspeech.cli"]]
    assert len(pytest_runs) == 1 and len(cli_runs) == 2

    # step 1: the named test files exist and its -k selects tests from each of them
    files = [a for a in pytest_runs[0] if a.endswith(".py")]
    assert files and all((ROOT / f).is_file() for f in files), files
    quiet_once = [a for a in pytest_runs[0] if a not in ("-q", "-v")]  # -qq would list files, not tests
    collect = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", *quiet_once],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert collect.returncode == 0, collect.stdout[-2000:]
    selected = [line for line in collect.stdout.splitlines() if "::" in line]
    assert {s.split("::")[0] for s in selected} == set(files)

    # steps 2-4: each benchmark accepts its command line; step 3's rows exist
    for command in commands:
        if command[0].startswith("benchmarks/"):
            name = Path(command[0]).stem
            args = accepted(benchmark_main(name), command[1:], monkeypatch)
            if name == "training":
                assert Path(args.config) == Path("egs/mini/conf/gpu.yaml") and (ROOT / args.config).is_file()
                rows = [r.strip() for r in args.variants.split(";")]
                known = benchmark_main("training").__globals__["variant_table"]("cuda")
                assert rows[:2] == ["channels-last + torch.compile", "+ every candidate"]
                assert not [r for r in rows if r not in known]
            if name == "triton_variants":
                count = len(benchmark_main(name).__globals__["VARIANTS"])
                assert all(1 <= int(i) <= count for i in args.only.split(",")), args.only
            if name == "generation":
                assert args.device == "cuda" and args.config == ["decoder-20-layers"]
                assert args.warmup_sweep == [256, 512]

    # step 5: vqspeech train accepts its options, twice: gpu.yaml as it is, then with the options of
    # the training benchmark's "+ every candidate" row, at the benchmark's batch
    from vqspeech import cli
    from vqspeech.config import load_config

    training = next(accepted(benchmark_main("training"), c[1:], monkeypatch) for c in commands
                    if c[0] == "benchmarks/training.py")
    every_row = benchmark_main("training").__globals__["variant_table"]("cuda")["+ every candidate"]
    configs = []
    for run in cli_runs:
        assert run[0] == "train"
        args = accepted(cli.main, run, monkeypatch)
        assert args.device == "cuda" and args.max_steps == 60 and (ROOT / args.config).is_file()
        assert re.search(r"/corpus/|gdata", args.train_data)
        configs.append(load_config(ROOT / args.config, args.overrides).train_conf)
    default, every = configs
    assert default.batch_size == every.batch_size == training.batch
    assert default.gate_kernel == "torch" and not (default.compile_encoder or default.compile_loss)
    as_options = {"gate_kernel": every.gate_kernel, "cudnn_benchmark": every.cudnn_benchmark,
                  "compile_encoder": every.compile_encoder, "compile_loss": every.compile_loss,
                  "bf16_stream": every.amp_residual_stream and every.amp == "bf16"}
    assert {k: every_row[k] for k in as_options} == as_options and every.compile
