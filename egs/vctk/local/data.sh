#!/usr/bin/env bash
# Stage 0 of the VCTK recipe: scan a VCTK tree (0.80 wav48/ or 0.92 wav48_silence_trimmed/) into data/.
set -euo pipefail
python=${python:-python3}
vctk_root= ; mic=mic1 ; heldout_speakers=
while [ $# -gt 0 ]; do
  case "$1" in
    --vctk-root) vctk_root=$2; shift 2 ;;
    --mic) mic=$2; shift 2 ;;
    --heldout-speakers) heldout_speakers=$2; shift 2 ;;
    *) echo "$0: error: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "${vctk_root}" ]; then
  echo "$0: error: --vctk-root is required (the VCTK corpus is not downloadable from here)" >&2; exit 2
fi
${python} -m vqspeech.corpora.vctk --vctk-root "${vctk_root}" --out-dir data --mic "${mic}" \
  --heldout-speakers "${heldout_speakers#,}"
