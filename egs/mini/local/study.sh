#!/usr/bin/env bash
# The decoder / code-rate study: train each config on the mini corpus at the same budget, then
# measure it with the recipe's own stages (3 encode, 5 phone report, 6 voice-conversion evaluation)
# and print one table.
#   local/study.sh spectral_mel spectral_hop256_mel ...      (configs in conf/; run from egs/mini)
#   local/study.sh spectral_mel:train_large                   (CONFIG:SET trains on data/SET, e.g. the
#                  train set with every other Harvard sentence; results in exp/CONFIG_SET)
# Two configs train side by side, one thread each (the 2-core budget). Results in exp/<config>/,
# logs in exp/<config>.study.log, the table in exp/study.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: $0 CONFIG [CONFIG ...]" >&2; exit 2; }
python=${python:-../../.venv/bin/python}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
run_one() {  # CONFIG[:TRAIN_SET]
  local config=${1%%:*} set=train tag=$1
  if [ "$1" != "${config}" ]; then set=${1#*:}; tag=${config}_${set}; fi
  local args=(--config "${config}" --tag "${tag}" --train-sets "${set}")
  ./run.sh "${args[@]}" --stage 2 --stop-stage 3 > "exp/${tag}.study.log" 2>&1 &&
    ./run.sh "${args[@]}" --stage 5 --stop-stage 6 >> "exp/${tag}.study.log" 2>&1
}
mkdir -p exp
configs=("$@")
tags=()
for c in "${configs[@]}"; do if [[ $c == *:* ]]; then tags+=("${c%%:*}_${c#*:}"); else tags+=("$c"); fi; done
for ((i = 0; i < ${#configs[@]}; i += 2)); do
  run_one "${configs[i]}" & a=$!
  if [ $((i + 1)) -lt ${#configs[@]} ]; then run_one "${configs[i + 1]}"; fi
  wait $a
done
${python} local/study_table.py "${tags[@]}" | tee exp/study.md
