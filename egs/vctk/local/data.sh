#!/usr/bin/env bash
# Stage 0 of the VCTK recipe: scan a VCTK tree (0.80 wav48/ or 0.92 wav48_silence_trimmed/) into data/.
#   local/data.sh --vctk-root DIR [--mic mic1|mic2] [--heldout-speakers p225,p226]
set -euo pipefail
python=${python:-python3}
vctk_root= ; mic=mic1 ; heldout_speakers=
__option_names="vctk_root mic heldout_speakers"
. "$(dirname "$0")/../../../recipes/utils/parse_options.sh"   # --foo-bar VALUE sets foo_bar
if [ $# -gt 0 ]; then echo "$0: error: unexpected argument '$1'" >&2; exit 2; fi
if [ -z "${vctk_root}" ]; then
  echo "$0: error: --vctk-root is required (the VCTK corpus is not downloadable from here)" >&2; exit 2
fi
${python} -m vqspeech prepare-vctk --vctk-root "${vctk_root}" --out-dir data --mic "${mic}" \
  --heldout-speakers "${heldout_speakers}"
