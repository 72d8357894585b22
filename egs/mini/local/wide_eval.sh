#!/usr/bin/env bash
# The wider intelligibility check: stage 6's voice-conversion evaluation on 10 parallel test
# sentences instead of 2 (1,440 converted words, 360 resynthesized, against 300 / 75), for rows
# whose differences on 2 sentences fall within that test's noise.
#   local/wide_eval.sh TAG [TAG ...]      (experiments in exp/TAG, run from egs/mini)
# Two tags at a time, one thread each; reports in exp/TAG/reports/vc_test_s10/, which
# local/study_table.py shows in its "10 sentences" columns.
#   intonation=0.5 local/wide_eval.sh TAG     (a source_pitch model converted with
#   --intonation 0.5, or none: reports in exp/TAG/reports/vc_test_s10_intonation0.5/)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: $0 TAG [TAG ...]" >&2; exit 2; }
python=${python:-../../.venv/bin/python}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
intonation=${intonation:-}
suffix=${intonation:+_intonation$intonation}
one() {
  ${python} -W ignore -m vqspeech vc-eval --model "exp/$1/checkpoint.pt" --data-dir data/test \
    --centroid-data data/dev --output-dir "exp/$1/reports/vc_test_s10$suffix" --max-sentences 10 --no-progress \
    ${intonation:+--intonation "$intonation"} > "exp/$1.wide_eval$suffix.log" 2>&1
}
tags=("$@")
for ((i = 0; i < ${#tags[@]}; i += 2)); do
  one "${tags[i]}" & a=$!
  if [ $((i + 1)) -lt ${#tags[@]} ]; then one "${tags[i + 1]}"; fi
  wait $a
done
