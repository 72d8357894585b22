#!/usr/bin/env bash
# LibriSpeech: read audiobooks, 251 speakers in train-clean-100; codes evaluated on dev-clean and
# test-clean (unseen speakers, as in ZeroSpeech 2021).
#   ./run.sh --librispeech-root /path/to/LibriSpeech [--alignments /path/to/mfa_textgrids]
# LibriSpeech has no phone alignments: --alignments imports the Montreal Forced Aligner's TextGrids
# (stage 1), without which stage 5's phone report is skipped. By default stages 0-3 and 5; stage 4
# would convert to each of the training voices, so it is skipped (--stop-stage 7 runs stages 6-7).
caller_dir=$PWD                   # relative path options are read from here
cd "$(dirname "$0")"
librispeech_root=${LIBRISPEECH_ROOT:-}
train_subsets=train-clean-100
eval_subsets=dev-clean,test-clean
corpus_options="librispeech_root train_subsets eval_subsets"   # parsed by the shared script, passed to local/data.sh
corpus_path_options="librispeech_root"                         # relative to the caller's folder
corpus_after_options() {          # the evaluated sets are the eval subsets' data directories
  test_sets=${eval_subsets//-/_}; test_sets=${test_sets//,/ }
}
config=paper
stop_stage=5
skip_stages=4
. ../../recipes/vqvae.sh "$@"
