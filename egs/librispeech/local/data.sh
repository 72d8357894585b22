#!/usr/bin/env bash
# Stage 0 of the LibriSpeech recipe: scan the subsets into data/{train,dev,<eval subsets>}.
#   local/data.sh --librispeech-root DIR [--train-subsets train-clean-100] [--eval-subsets dev-clean,test-clean]
#                 [--dev-every 100]
set -euo pipefail
python=${python:-python3}
librispeech_root= ; train_subsets=train-clean-100 ; eval_subsets=dev-clean,test-clean ; dev_every=100
__option_names="librispeech_root train_subsets eval_subsets dev_every"
. "$(dirname "$0")/../../../recipes/utils/parse_options.sh"   # --foo-bar VALUE sets foo_bar
if [ $# -gt 0 ]; then echo "$0: error: unexpected argument '$1'" >&2; exit 2; fi
if [ -z "${librispeech_root}" ]; then
  echo "$0: error: --librispeech-root is required (nothing is downloaded from here)" >&2; exit 2
fi
${python} -m vqspeech prepare-librispeech --librispeech-root "${librispeech_root}" --out-dir data \
  --train-subsets "${train_subsets}" --eval-subsets "${eval_subsets}" --dev-every "${dev_every}"
