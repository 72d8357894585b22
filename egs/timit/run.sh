#!/usr/bin/env bash
# TIMIT (LDC93S1): phone discovery against hand-labelled phone boundaries, 462 training speakers.
#   ./run.sh --timit-root /path/to/TIMIT [--phones 39|61] [--test-set core|complete]
# By default stages 0-3 and 5 (data with phones.ctm, training, codes, the phone report): the test
# speakers are unseen and there are 462 training voices, so stage 4's every-pair conversion
# (462 x 461 targets) is skipped and stages 6-7 are past the default stop (--stop-stage 7 runs them).
caller_dir=$PWD                   # relative path options are read from here
cd "$(dirname "$0")"
timit_root=${TIMIT_ROOT:-}
phones=39
test_set=core
corpus_options="timit_root phones test_set"   # parsed by the shared script, passed to local/data.sh
corpus_path_options="timit_root"              # relative to the caller's folder
config=paper
stop_stage=5
skip_stages=4
. ../../recipes/vqvae.sh "$@"
