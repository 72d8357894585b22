#!/usr/bin/env bash
# The decoder / code-rate study: train each config on the mini corpus at the same budget, then
# measure it with the recipe's own stages (3 encode, 5 phone report, 6 voice-conversion evaluation)
# and print one table.
#   local/study.sh spectral_mel spectral_hop256_mel ...      (configs in conf/; run from egs/mini)
# Two configs train side by side, one thread each (the 2-core budget). Results in exp/<config>/,
# logs in exp/<config>.study.log, the table in exp/study.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: $0 CONFIG [CONFIG ...]" >&2; exit 2; }
python=${python:-../../.venv/bin/python}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
run_one() {
  ./run.sh --config "$1" --stage 2 --stop-stage 3 > "exp/$1.study.log" 2>&1 &&
    ./run.sh --config "$1" --stage 5 --stop-stage 6 >> "exp/$1.study.log" 2>&1
}
mkdir -p exp
configs=("$@")
for ((i = 0; i < ${#configs[@]}; i += 2)); do
  run_one "${configs[i]}" & a=$!
  if [ $((i + 1)) -lt ${#configs[@]} ]; then run_one "${configs[i + 1]}"; fi
  wait $a
done
${python} local/study_table.py "${configs[@]}" | tee exp/study.md
