#!/usr/bin/env bash
# VCTK (0.80 or 0.92): the paper's speech setting, 109 speakers.
#   ./run.sh --vctk-root /path/to/VCTK-Corpus-0.92 [--mic mic2] [--heldout-speakers p225,p226]
cd "$(dirname "$0")"
vctk_root=${VCTK_ROOT:-}
mic=mic1
heldout_speakers=
config=paper
align=true
# Parse the corpus options first, pass the rest on to the shared stages.
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --vctk-root) vctk_root=$2; shift 2 ;;
    --mic) mic=$2; shift 2 ;;
    --heldout-speakers) heldout_speakers=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
data_args="--vctk-root ${vctk_root} --mic ${mic} --heldout-speakers ${heldout_speakers:-,}"
. ../../recipes/vqvae.sh "${args[@]+"${args[@]}"}"
