"""`vqspeech vc-eval` with its spectral measures in turn and on threads, side by side in one run.

    python benchmarks/vc_eval_threads.py --model exp/default/checkpoint.pt --data-dir data/test \
        --centroid-data data/dev [--threads 0,2] [--max-sentences 1]

Each thread count runs the command in a new process (each pays the same start-up: imports, the
model, pocketsphinx's language model), and the table gives its wall time and whether its report
equals the first row's (``real_time_factor``, a timing, left out). Run it from the recipe folder (egs/mini) after ``make run``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args, threads: int, out: Path) -> tuple[float, dict]:
    """(seconds, the report without its timings) of one ``vc-eval`` in a new process."""
    cmd = [sys.executable, "-W", "ignore", "-m", "vqspeech", "vc-eval", "--model", args.model,
           "--data-dir", args.data_dir, "--centroid-data", args.centroid_data, "--output-dir", str(out),
           "--max-sentences", str(args.max_sentences), "--analysis-threads", str(threads), "--no-progress"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t
    report = json.loads((out / "report.json").read_text())
    for row in report["rows"]:
        row.pop("real_time_factor", None)
    return seconds, report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--centroid-data", required=True)
    p.add_argument("--threads", default="0,2", help="comma-separated --analysis-threads values")
    p.add_argument("--max-sentences", type=int, default=1)
    args = p.parse_args()
    counts = [int(n) for n in args.threads.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            rows.append((n, *run(args, n, Path(tmp) / f"threads_{n}")))
    first_seconds, first_report = rows[0][1], rows[0][2]
    print(f"{args.model} on {args.data_dir}, {args.max_sentences} sentence(s) between every speaker pair")
    print("| --analysis-threads | seconds | vs the first row | report equals the first row's |")
    print("|---:|---:|---:|---|")
    for n, seconds, report in rows:
        same = json.dumps(report) == json.dumps(first_report)  # values and key order
        print(f"| {n} | {seconds:.1f} | {first_seconds / seconds:.2f}x | {'yes' if same else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
