#!/usr/bin/env bash
# The embedded mini corpus: 200 Harvard sentences read by every flite/festival voice, phone-aligned.
#   ./run.sh                          all stages with conf/default.yaml (log-mel encoder, spectral decoder, parallel supervision; about 7-8 min of bf16 training on 2 cores by the hour)
#   ./run.sh --stage 0 --stop-stage 1 --data-args "--num-sentences 12"   a tiny corpus only
#   ./run.sh --config gpu             the larger config meant for a GPU
caller_dir=$PWD                   # relative path options are read from here
cd "$(dirname "$0")"
num_sentences=200
config=default
data_args="--num-sentences ${num_sentences}"
. ../../recipes/vqvae.sh "$@"
