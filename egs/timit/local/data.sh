#!/usr/bin/env bash
# Stage 0 of the TIMIT recipe: scan a TIMIT tree (TRAIN/ and TEST/) into data/, each set with phones.ctm.
#   local/data.sh --timit-root DIR [--phones 39|61] [--test-set core|complete] [--dev-every 20]
set -euo pipefail
python=${python:-python3}
timit_root= ; phones=39 ; test_set=core ; dev_every=20
__option_names="timit_root phones test_set dev_every"
. "$(dirname "$0")/../../../recipes/utils/parse_options.sh"   # --foo-bar VALUE sets foo_bar
if [ $# -gt 0 ]; then echo "$0: error: unexpected argument '$1'" >&2; exit 2; fi
if [ -z "${timit_root}" ]; then
  echo "$0: error: --timit-root is required (TIMIT is licensed by the LDC; it is not downloadable from here)" >&2
  exit 2
fi
${python} -m vqspeech prepare-timit --timit-root "${timit_root}" --out-dir data --phones "${phones}" \
  --test-set "${test_set}" --dev-every "${dev_every}"
