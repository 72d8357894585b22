#!/usr/bin/env bash
# Stage 0 of the mini recipe: synthesize the parallel corpus into corpus/ and data/{train,dev,test}.
# Options are passed to 'vqspeech make-mini-corpus' (e.g. --num-sentences 12, --speakers awb,slt;
# --extra-train-sentences 520 adds data/train_large, the train set with every other Harvard sentence).
set -euo pipefail
python=${python:-python3}
${python} -m vqspeech make-mini-corpus --out-dir corpus "$@"
mkdir -p data
for s in train dev test train_large; do
  if [ ! -d "corpus/data/$s" ]; then rm -rf "data/$s"; continue; fi
  rm -rf "data/$s.tmp"; cp -r "corpus/data/$s" "data/$s.tmp"; rm -rf "data/$s"; mv "data/$s.tmp" "data/$s"
done
echo "data directories: $(pwd)/data/{train,dev,test}"
