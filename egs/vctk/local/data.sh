#!/usr/bin/env bash
# Stage 0 of the VCTK recipe: scan a VCTK tree (0.80 wav48/ or 0.92 wav48_silence_trimmed/) into data/.
#   local/data.sh --vctk-root DIR [--mic mic1|mic2] [--heldout-speakers p225,p226]
set -euo pipefail
python=${python:-python3}
vctk_root= ; mic=mic1 ; heldout_speakers=
while [ $# -gt 0 ]; do
  case "$1" in
    --vctk-root|--mic|--heldout-speakers)
      if [ $# -lt 2 ]; then echo "$0: error: option $1 needs a value" >&2; exit 2; fi
      __var=${1#--}; printf -v "${__var//-/_}" '%s' "$2"; shift 2 ;;
    *) echo "$0: error: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "${vctk_root}" ]; then
  echo "$0: error: --vctk-root is required (the VCTK corpus is not downloadable from here)" >&2; exit 2
fi
${python} -m vqspeech prepare-vctk --vctk-root "${vctk_root}" --out-dir data --mic "${mic}" \
  --heldout-speakers "${heldout_speakers}"
