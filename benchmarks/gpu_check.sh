#!/bin/bash
# The GPU checks of issue 15 in one run on the lent GPU machine: the CUDA tests, the Triton kernel's
# layouts and precisions, the training benchmark (with a kernel profile), the generation benchmark and
# `vqspeech train --device cuda`; each step starts only if DEADLINE (seconds from the start) leaves it
# room.  Needs .device/ as benchmarks/gpu_prepare.sh fills it (soundfile wheels, the mini training corpus).
# STEPS picks steps by number and runs them in that order (default "1 2 3 4 5").
#   device run, carry [".device"]:  OUT=$OUT DEADLINE=480 bash benchmarks/gpu_check.sh
set -u
T0=$(date +%s); export PYTHONUNBUFFERED=1
PY=${PY:-python3}; OUT=${OUT:-/tmp/gpuout}; ROOT=$PWD/.device; DEADLINE=${DEADLINE:-540}; mkdir -p "$OUT"
PROBE=/tmp/probe  # step 5's experiment directory (not under $OUT: its checkpoints need not come back)
exec > >(tee -a "$OUT/log.txt") 2>&1
if [ -d "$ROOT/whl" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$ROOT"/whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
rm -rf /tmp/gdata "$PROBE"; cp -r "$ROOT/corpus/data" /tmp/gdata
for f in /tmp/gdata/*/wav.scp; do sed -i "s#@ROOT@#$ROOT/corpus#" "$f"; done
{ nvidia-smi -L; $PY -c "import torch,numba,triton,soundfile;print('torch',torch.__version__,'triton',triton.__version__,'numba',numba.__version__)"; nproc; } 2>&1 | tee "$OUT/env.txt"
left() { echo $(( DEADLINE - ($(date +%s) - T0) )); }
# step NAME NEEDED_SECONDS: announce a step, or skip it when less than NEEDED_SECONDS are left
step() {
  echo; echo "== $1 (at $(( $(date +%s) - T0 )) s)"; [ "$(left)" -ge "$2" ] || { echo "skipped: $(left) s left"; return 1; }
}
lim() { local l; l=$(left); echo $(( $1 < l ? $1 : l )); }
step_1() {
  step "1. CUDA tests" 60 || return 0
  # one line per test as it finishes, so a run cut short by the time limit still shows its results
  timeout "$(lim 200)" $PY -m pytest -v -p no:cacheprovider tests/test_wavenet.py tests/test_generation_triton.py tests/test_train.py \
    tests/test_gate_kernel.py tests/test_linear_gate.py tests/test_wavenet_vocoder.py tests/test_prior.py \
    -k "cuda or gate_kernel or linear_gate" 2>&1 | grep -E " (PASSED|FAILED|ERROR|SKIPPED)|^E |[0-9]+ (passed|failed)" | tail -60
}
step_2() {
  step "2. Triton kernel layouts and precisions (20-layer 64/128/128 decoder)" 60 || return 0
  timeout "$(lim 200)" $PY benchmarks/triton_variants.py --only "${TRITON_VARIANTS:-4,1,8}" \
    --segments "${SEGMENTS:-512,1024}" --json "$OUT/triton_variants.json" 2>&1 | grep -v -i warn | tail -30
}
step_3() {
  step "3. training benchmark (gpu.yaml model, batch 32 x 16384) and kernel profile" 90 || return 0
  # most telling first (a time limit keeps the rows measured): the default, every candidate at
  # once (does the step reach 1,000 s of audio/s?), then each candidate alone
  rows="channels-last + torch.compile;+ every candidate;+ every candidate, the gate kernel alone"
  rows+=";+ every candidate, batch x2"
  rows+=";+ Triton convolution-gate kernel;+ Triton gate kernels;+ bf16 residual stream;+ loss compiled;+ encoder compiled"
  rows+=";+ cuDNN autotuning;+ coordinate-descent tuning"
  timeout "$(lim 260)" $PY benchmarks/training.py --config egs/mini/conf/gpu.yaml --batch 32 --steps 30 --warmup 5 \
    --variants "${TRAIN_VARIANTS:-$rows}" \
    --train-data /tmp/gdata/train --profile "$OUT/train_profile.txt" --parts --json "$OUT/train.json" 2>&1 | grep -v -i warn | tail -70
}
step_4() {
  step "4. generation benchmark (20-layer 64/128/128 decoder)" 120 || return 0
  timeout "$(lim 250)" $PY benchmarks/generation.py --device cuda --config decoder-20-layers --cached-samples 2048 \
    --naive-steps 3 --repeat 2 --warmup-sweep "${WARMUPS:-256,512}" --json "$OUT/gen.json" 2>&1 | grep -v -i warn | tail -30
}
step_5() {
  step "5. vqspeech train --device cuda, batch 32: gpu.yaml as it is, then with every step option" 150 || return 0
  # the real trainer (data loading, logging, checkpoint) at the training benchmark's batch; the
  # steady figure leaves out the first log window (compiles, cuDNN's timing, the loader's start)
  local every="--set train_conf.gate_kernel=triton-linear --set train_conf.compile_encoder=true"
  every+=" --set train_conf.compile_loss=true --set train_conf.amp_residual_stream=true --set train_conf.cudnn_benchmark=true"
  local run
  for run in default every; do
    rm -rf "$PROBE"
    # shellcheck disable=SC2046  # the options split into words on purpose
    timeout "$(lim 150)" $PY -m vqspeech.cli train --config egs/mini/conf/gpu.yaml --train-data /tmp/gdata/train \
      --exp-dir "$PROBE" --max-steps 60 --no-progress --device cuda --set train_conf.batch_size=32 \
      --set train_conf.log_every=20 $([ "$run" = every ] && echo "$every") 2>&1 | tail -2
    [ -f "$PROBE/train_summary.json" ] || { echo "$run: no summary (cut short)"; continue; }
    $PY -c "import json;s=json.load(open('$PROBE/train_summary.json'));print('$run: throughput',round(s['throughput_audio_seconds_per_second'],1),'steady',round(s['steady_throughput_audio_seconds_per_second'] or 0,1),'s audio/s')"
  done
}
# the steps in the order STEPS gives them (e.g. "1 4 3": generation before the long training rows)
for n in ${STEPS:-1 2 3 4 5}; do
  declare -F "step_$n" >/dev/null || { echo "STEPS: no step $n"; continue; }
  "step_$n"
done
echo; echo "total $(( $(date +%s) - T0 )) s"
