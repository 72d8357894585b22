#!/usr/bin/env bash
# Stage 0 of the TIMIT recipe: scan a TIMIT tree (TRAIN/ and TEST/) into data/, each set with phones.ctm.
#   local/data.sh --timit-root DIR [--phones 39|61] [--test-set core|complete] [--dev-every 20]
set -euo pipefail
python=${python:-python3}
timit_root= ; phones=39 ; test_set=core ; dev_every=20
while [ $# -gt 0 ]; do
  case "$1" in
    --timit-root|--phones|--test-set|--dev-every)
      if [ $# -lt 2 ]; then echo "$0: error: option $1 needs a value" >&2; exit 2; fi
      __var=${1#--}; printf -v "${__var//-/_}" '%s' "$2"; shift 2 ;;
    *) echo "$0: error: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "${timit_root}" ]; then
  echo "$0: error: --timit-root is required (TIMIT is licensed by the LDC; it is not downloadable from here)" >&2
  exit 2
fi
${python} -m vqspeech prepare-timit --timit-root "${timit_root}" --out-dir data --phones "${phones}" \
  --test-set "${test_set}" --dev-every "${dev_every}"
