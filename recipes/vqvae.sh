#!/usr/bin/env bash
# Shared VQ-VAE recipe stages. A corpus run.sh sets the variables below and calls
#   . ../../recipes/vqvae.sh "$@"
# Stages (run a range with --stage N --stop-stage M):
#   0  corpus:     prepare the corpus (the corpus's local/data.sh)
#   1  data dirs:  validate data/{train,dev,test} (sorting, keys, audio readable)
#   2  train:      train the VQ-VAE with conf/${config}.yaml into exp/${tag}
set -euo pipefail

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*"; }

# --- defaults a corpus run.sh may override (before sourcing) or the user on the command line ---
stage=${stage:-0}
stop_stage=${stop_stage:-100}
config=${config:-default}          # conf/<config>.yaml
tag=${tag:-}                       # exp/<tag>; defaults to the config's basename
data_args=${data_args:-}           # extra arguments for local/data.sh
train_sets=${train_sets:-train}
dev_set=${dev_set:-dev}
test_sets=${test_sets:-test}
__root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -x "${__root}/.venv/bin/python" ]; then python=${python:-${__root}/.venv/bin/python}; else python=${python:-python3}; fi
export python
nproc_per_node=${nproc_per_node:-1} # >1: torchrun with DistributedDataParallel
train_args=${train_args:-}         # extra arguments for 'vqspeech train'
__option_names="stage stop_stage config tag data_args python nproc_per_node train_args"

. "$(dirname "${BASH_SOURCE[0]}")/utils/parse_options.sh"
if [ $# -gt 0 ]; then echo "$0: error: unexpected argument '$1'" >&2; exit 2; fi

tag=${tag:-$(basename "${config}" .yaml)}
conf_file=conf/$(basename "${config}" .yaml).yaml
expdir=exp/${tag}

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  log "Stage 0: corpus preparation (local/data.sh ${data_args})"
  # shellcheck disable=SC2086
  local/data.sh ${data_args}
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  log "Stage 1: validating data directories"
  for set in ${train_sets} ${dev_set} ${test_sets}; do
    ${python} -m vqspeech validate-data-dir "data/${set}"
  done
  log "Data directories: $(for s in ${train_sets} ${dev_set} ${test_sets}; do printf '%s ' "$(pwd)/data/$s"; done)"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  log "Stage 2: training ${conf_file} -> ${expdir}"
  if ${python} -c "import vqspeech.train" 2>/dev/null; then
    if [ "${nproc_per_node}" -gt 1 ]; then
      # shellcheck disable=SC2086
      ${python} -m torch.distributed.run --standalone --nproc_per_node "${nproc_per_node}" \
        -m vqspeech.bin.train --config "${conf_file}" --train-data "data/${train_sets%% *}" \
        --dev-data "data/${dev_set}" --exp-dir "${expdir}" ${train_args}
    else
      # shellcheck disable=SC2086
      ${python} -m vqspeech train --config "${conf_file}" --train-data "data/${train_sets%% *}" \
        --dev-data "data/${dev_set}" --exp-dir "${expdir}" ${train_args}
    fi
    log "Model: ${expdir}/checkpoint.pt"
  else
    log "Stage 2: training is not available in this version; stopping"; exit 0
  fi
fi
log "Done (stages ${stage}..${stop_stage})"
