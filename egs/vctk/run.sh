#!/usr/bin/env bash
# VCTK (0.80 or 0.92): the paper's speech setting, 109 speakers.
#   ./run.sh --vctk-root /path/to/VCTK-Corpus-0.92 [--mic mic2] [--heldout-speakers p225,p226]
caller_dir=$PWD                   # relative path options are read from here
cd "$(dirname "$0")"
vctk_root=${VCTK_ROOT:-}
mic=mic1
heldout_speakers=
corpus_options="vctk_root mic heldout_speakers"   # parsed by the shared script, passed to local/data.sh
corpus_path_options="vctk_root"                   # relative to the caller's folder
config=paper
align=true
. ../../recipes/vqvae.sh "$@"
