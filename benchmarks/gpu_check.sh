#!/bin/bash
# The GPU checks of issue 15 in one run on the lent GPU machine: the CUDA tests, the training
# benchmark, `vqspeech train --device cuda`, and the generation benchmark.  Needs .device/ as
# ../shared/device/prepare.sh fills it (soundfile wheels, the mini corpus as FLAC).
#   device run, carry [".device"]:  OUT=$OUT bash benchmarks/gpu_check.sh
set -u
T0=$(date +%s); export PYTHONUNBUFFERED=1
PY=${PY:-python3}; OUT=${OUT:-/tmp/gpuout}; ROOT=$PWD/.device; mkdir -p "$OUT"
if [ -d "$ROOT/whl" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$ROOT"/whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
rm -rf /tmp/gdata /tmp/probe; cp -r "$ROOT/corpus/data" /tmp/gdata
for s in train dev test; do sed -i "s#@ROOT@#$ROOT/corpus#" /tmp/gdata/$s/wav.scp; done
{ nvidia-smi -L; $PY -c "import torch,numba,triton,soundfile;print('torch',torch.__version__,'triton',triton.__version__,'numba',numba.__version__)"; nproc; } 2>&1 | tee "$OUT/env.txt"
step() { echo; echo "== $1 (at $(( $(date +%s) - T0 )) s)"; }
step "1. CUDA tests"
timeout 150 $PY -m pytest -q -p no:cacheprovider tests/test_wavenet.py tests/test_generation_triton.py -k cuda 2>&1 | tail -8
step "2. generation benchmark (20-layer 64/128/128 decoder)"
timeout 250 $PY benchmarks/generation.py --device cuda --config decoder-20-layers --cached-samples 2048 \
  --naive-steps 3 --repeat 2 --json "$OUT/gen.json" 2>&1 | grep -v -i warn | tail -30
step "3. training benchmark (gpu.yaml model, batch 32 x 16384)"
timeout 160 $PY benchmarks/training.py --config egs/mini/conf/gpu.yaml --batch 32 --steps 20 \
  --train-data /tmp/gdata/train --json "$OUT/train.json" 2>&1 | grep -v -i warn | tail -10
if [ "${PROBE:-1}" != 0 ]; then
step "4. vqspeech train --device cuda (30 steps)"
timeout 90 $PY -m vqspeech.cli train --config egs/mini/conf/gpu.yaml --train-data /tmp/gdata/train \
  --exp-dir /tmp/probe --max-steps 30 --no-progress --device cuda 2>&1 | tail -2
$PY -c "import json;s=json.load(open('/tmp/probe/train_summary.json'));print('throughput',s['throughput_audio_seconds_per_second'],'s audio/s')"
fi
echo; echo "total $(( $(date +%s) - T0 )) s"
