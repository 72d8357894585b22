#!/usr/bin/env bash
# Shared VQ-VAE recipe stages. A corpus run.sh sets the variables below and calls
#   . ../../recipes/vqvae.sh "$@"
# Stages (run a range with --stage N --stop-stage M, leaving out --skip-stages 4,6):
#   0  corpus:     prepare the corpus (the corpus's local/data.sh)
#   1  data dirs:  validate data/{train,dev,test} (sorting, keys, audio readable); with --alignments P,
#                  import other tools' alignment files under P (TextGrid, TIMIT .PHN, HTK .lab) into the
#                  sets that have no phones.ctm (a set no file names is left as it is); with --align
#                  true, forced-align (pocketsphinx) the sets that still have none
#   2  train:      train the VQ-VAE with conf/${config}.yaml into exp/${tag}
#   3  encode:     codes of the dev and test sets -> exp/${tag}/codes/<set>.txt (+ encoder features .npz)
#   4  convert:    a few converted examples for every (source, target) speaker pair of the test set
#                  -> exp/${tag}/convert/<src>_to_<tgt>/<utt>.wav
#   5  phone report: codes vs phones.ctm of the test set -> exp/${tag}/reports/phones_<set>/
#   6  vc-eval:    convert the parallel test set between all speakers; MCD, F0, speaker similarity, WER
#                  -> exp/${tag}/reports/vc_<set>/
#   7  prior:      encode the training set, train the prior over codes (conf/${prior_config}.yaml) into
#                  exp/${tag}/prior, sample ${prior_samples} utterance(s) per test speaker and report
#                  (bits/code, speaker ID, phone statistics) -> exp/${tag}/prior/report/; the test set's
#                  phone report gains the sampled codes' phone statistics
#   8  vocoder:    only with --vocoder-config NAME (spectral models): train the WaveNet vocoder
#                  conf/NAME.yaml on the training audio's real log-mel frames into exp/NAME (shared by
#                  every spectral model with those frames; resumes), then stage 6's evaluation with it
#                  -> exp/${tag}/reports/vc_<set>_wavenet/
set -euo pipefail

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*"; }
# run_stage N: whether stage N lies in [--stage, --stop-stage] and is not one of --skip-stages
run_stage() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ] && [[ " ${skip_stages//,/ } " != *" $1 "* ]]; }

# --- defaults a corpus run.sh may override (before sourcing) or the user on the command line ---
stage=${stage:-0}
stop_stage=${stop_stage:-100}
skip_stages=${skip_stages:-}       # stages not run even inside [stage, stop_stage] (comma-separated)
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
align=${align:-false}              # stage 1: forced alignment for corpora without phones.ctm
alignments=${alignments:-}         # stage 1: a file or folder of alignments from another tool (import-alignments)
alignment_args=${alignment_args:-}  # stage 1: extra arguments for it (e.g. "--fold timit39" or "--tier phones")
convert_examples=${convert_examples:-1}  # utterances converted per speaker pair in stage 4
vc_sentences=${vc_sentences:-2}     # stage 6: sentences converted between every speaker pair
decode_args=${decode_args:-}       # extra arguments for generation (e.g. "--temperature 0.9")
heldout_speakers=${heldout_speakers:-}  # stages 2, 7: train without these speakers (comma-separated); stage 6
                                   # then converts to them from reference audio (reference models)
prior_config=${prior_config:-prior}  # stage 7: conf/<prior_config>.yaml (built-in defaults when absent)
prior_samples=${prior_samples:-2}  # stage 7: samples per test speaker
voice_shifts=${voice_shifts:-}     # stage 2: also train on every training speaker shifted by these semitones
                                   # (comma-separated, e.g. -4,-2,2,4; 'vqspeech shift-voices'), after --heldout-speakers
vocoder_config=${vocoder_config:-}  # stage 8: conf/<vocoder_config>.yaml (empty: stage 8 is skipped)
__option_names="stage stop_stage skip_stages config tag data_args train_sets python nproc_per_node train_args align alignments alignment_args convert_examples vc_sentences decode_args heldout_speakers prior_config prior_samples voice_shifts vocoder_config ${corpus_options:-}"

. "$(dirname "${BASH_SOURCE[0]}")/utils/parse_options.sh"
if [ $# -gt 0 ]; then echo "$0: error: unexpected argument '$1'" >&2; exit 2; fi
# A corpus whose sets follow from its own options derives them here (run.sh defines the function).
if declare -F corpus_after_options >/dev/null; then corpus_after_options; fi
# A path option given relative means relative to where the user ran run.sh (which cd's to its folder).
caller_dir=${caller_dir:-$PWD}
for __v in alignments ${corpus_path_options:-}; do
  case "${!__v}" in ""|/*) ;; *) printf -v "$__v" '%s' "${caller_dir}/${!__v}" ;; esac
done

tag=${tag:-$(basename "${config}" .yaml)}
# --config takes a path to a YAML file or the name of one in conf/; say which was used.
if [ -f "${config}" ]; then
  conf_file=${config}
elif [ -f "conf/${config%.yaml}.yaml" ]; then
  conf_file=conf/${config%.yaml}.yaml
else
  echo "$0: error: --config ${config}: neither a file nor conf/${config%.yaml}.yaml" >&2; exit 2
fi
expdir=exp/${tag}
if run_stage 2; then log "Config: ${conf_file}"; fi

# A corpus's own options (corpus_options, set by its run.sh) go to its local/data.sh.
corpus_args=()
for __v in ${corpus_options:-}; do corpus_args+=("--${__v//_/-}" "${!__v}"); done
if run_stage 0; then
  log "Stage 0: corpus preparation (local/data.sh ${data_args} ${corpus_args[*]+${corpus_args[*]}})"
  # shellcheck disable=SC2086
  local/data.sh ${data_args} "${corpus_args[@]+"${corpus_args[@]}"}"
fi

if run_stage 1; then
  log "Stage 1: validating data directories"
  for set in ${train_sets} ${dev_set} ${test_sets}; do
    ${python} -m vqspeech validate-data-dir "data/${set}"
  done
  if [ -n "${alignments}" ]; then
    for set in ${train_sets} ${dev_set} ${test_sets}; do
      if [ ! -f "data/${set}/phones.ctm" ]; then
        log "Stage 1: phone alignments of data/${set} from ${alignments}"
        # shellcheck disable=SC2086
        ${python} -m vqspeech import-alignments --data-dir "data/${set}" --allow-none ${alignment_args} "${alignments}"
      fi
    done
  fi
  if [ "${align}" = true ]; then
    for set in ${train_sets} ${dev_set} ${test_sets}; do
      if [ ! -f "data/${set}/phones.ctm" ]; then
        log "Stage 1: forced alignment of data/${set} (pocketsphinx)"
        ${python} -m vqspeech align --data-dir "data/${set}" --jobs "$(nproc)"
      fi
    done
  fi
  log "Data directories: $(for s in ${train_sets} ${dev_set} ${test_sets}; do printf '%s ' "$(pwd)/data/$s"; done)"
fi

# The sets training sees: the train and dev sets, less --heldout-speakers when given, plus shifted
# copies of the training voices with --voice-shifts.
train_dir=data/${train_sets%% *}
train_dev_dir=data/${dev_set}
if [ -n "${heldout_speakers}" ]; then
  train_dir=${train_dir}_without_${heldout_speakers//,/_}
  train_dev_dir=${train_dev_dir}_without_${heldout_speakers//,/_}
fi
unshifted_train_dir=${train_dir}
if [ -n "${voice_shifts}" ]; then train_dir=${train_dir}_shifted${voice_shifts//,/_}; fi
if run_stage 2; then
  if [ -n "${heldout_speakers}" ]; then
    log "Stage 2: holding out ${heldout_speakers}: ${unshifted_train_dir}, ${train_dev_dir}"
    ${python} -m vqspeech subset-data-dir "data/${train_sets%% *}" "${unshifted_train_dir}" --exclude-speakers "${heldout_speakers}"
    ${python} -m vqspeech subset-data-dir "data/${dev_set}" "${train_dev_dir}" --exclude-speakers "${heldout_speakers}"
  fi
  if [ -n "${voice_shifts}" ]; then
    log "Stage 2: the training voices also shifted by ${voice_shifts} semitones: ${train_dir}"
    ${python} -m vqspeech shift-voices "${unshifted_train_dir}" "${train_dir}" --semitones="${voice_shifts}"
  fi
  log "Stage 2: training ${conf_file} -> ${expdir}"
  if [ "${nproc_per_node}" -gt 1 ]; then
    # shellcheck disable=SC2086
    ${python} -m torch.distributed.run --standalone --nproc_per_node "${nproc_per_node}" \
      -m vqspeech.bin.train --config "${conf_file}" --train-data "${train_dir}" \
      --dev-data "${train_dev_dir}" --exp-dir "${expdir}" ${train_args}
  else
    # shellcheck disable=SC2086
    ${python} -m vqspeech train --config "${conf_file}" --train-data "${train_dir}" \
      --dev-data "${train_dev_dir}" --exp-dir "${expdir}" ${train_args}
  fi
  log "Model: ${expdir}/checkpoint.pt"
fi
model=${expdir}/checkpoint.pt

if run_stage 3; then
  log "Stage 3: encoding ${dev_set} ${test_sets} with ${model}"
  for set in ${dev_set} ${test_sets}; do
    ${python} -m vqspeech encode --model "${model}" --data-dir "data/${set}" \
      --output "${expdir}/codes/${set}.txt" --features "${expdir}/codes/${set}_features.npz"
  done
fi

if run_stage 4; then
  log "Stage 4: converting ${convert_examples} utterance(s) per speaker pair of ${test_sets%% *}"
  # shellcheck disable=SC2086
  ${python} -m vqspeech convert-voice --model "${model}" --data-dir "data/${test_sets%% *}" \
    --all-pairs "${convert_examples}" --output-dir "${expdir}/convert" --no-progress ${decode_args}
  log "Converted examples: ${expdir}/convert/"
fi
if run_stage 5; then
  for set in ${test_sets}; do
    if [ ! -f "data/${set}/phones.ctm" ]; then
      log "Stage 5: data/${set} has no phones.ctm (run the alignment stage); skipping its phone report"; continue
    fi
    log "Stage 5: phone report for ${set}"
    ${python} -m vqspeech phone-report --model "${model}" --codes "${expdir}/codes/${set}.txt" \
      --features "${expdir}/codes/${set}_features.npz" --data-dir "data/${set}" \
      --output-dir "${expdir}/reports/phones_${set}"
  done
fi
if run_stage 6; then
  for set in ${test_sets}; do
    log "Stage 6: voice-conversion evaluation on ${set} (${vc_sentences} sentences x all speaker pairs)"
    ${python} -W ignore -m vqspeech vc-eval --model "${model}" --data-dir "data/${set}" \
      --centroid-data "data/${dev_set}" --output-dir "${expdir}/reports/vc_${set}" \
      --max-sentences "${vc_sentences}" --no-progress
  done
fi
if run_stage 7 && [ -n "${heldout_speakers}" ]; then
  log "Stage 7: skipped with --heldout-speakers (the prior is trained and evaluated on the model's own speakers)"
elif run_stage 7; then
  train_set=$(basename "${train_dir}")
  log "Stage 7: the prior over codes (encode ${train_set}, train, sample, report)"
  ${python} -m vqspeech encode --model "${model}" --data-dir "${train_dir}" --output "${expdir}/codes/${train_set}.txt"
  prior_conf_args=()
  if [ -f "conf/${prior_config%.yaml}.yaml" ]; then prior_conf_args=(--config "conf/${prior_config%.yaml}.yaml"); fi
  ${python} -m vqspeech train-prior --model "${model}" "${prior_conf_args[@]}" \
    --train-codes "${expdir}/codes/${train_set}.txt" --train-data "${train_dir}" \
    --dev-codes "${expdir}/codes/${dev_set}.txt" --dev-data "data/${dev_set}" --exp-dir "${expdir}/prior" --no-progress
  set=${test_sets%% *}
  ${python} -W ignore -m vqspeech prior-report --model "${model}" --prior "${expdir}/prior/prior.pt" \
    --data-dir "data/${set}" --codes "${expdir}/codes/${set}.txt" --train-codes "${expdir}/codes/${train_set}.txt" \
    --output-dir "${expdir}/prior/report" --per-speaker "${prior_samples}"
  if [ -f "data/${set}/phones.ctm" ]; then
    ${python} -m vqspeech phone-report --model "${model}" --codes "${expdir}/codes/${set}.txt" \
      --features "${expdir}/codes/${set}_features.npz" --data-dir "data/${set}" \
      --sampled-codes "${expdir}/prior/report/sampled_codes.txt" --output-dir "${expdir}/reports/phones_${set}"
  fi
fi
if run_stage 8; then
  if [ -z "${vocoder_config}" ]; then
    log "Stage 8: skipped (give --vocoder-config NAME, a conf/NAME.yaml with the model's frames, to train and use a WaveNet vocoder)"
  else
    vocoder_dir=exp/$(basename "${vocoder_config}" .yaml)
    log "Stage 8: WaveNet vocoder conf/${vocoder_config%.yaml}.yaml on $(basename "${train_dir}") -> ${vocoder_dir}"
    # --frames-of: a config whose frames are not the model's is refused before any training
    ${python} -m vqspeech train-vocoder --config "conf/${vocoder_config%.yaml}.yaml" --train-data "${train_dir}" \
      --dev-data "${train_dev_dir}" --exp-dir "${vocoder_dir}" --frames-of "${model}" --no-progress
    for set in ${test_sets}; do
      log "Stage 8: voice-conversion evaluation on ${set} with the WaveNet vocoder"
      ${python} -W ignore -m vqspeech vc-eval --model "${model}" --data-dir "data/${set}" \
        --centroid-data "data/${dev_set}" --output-dir "${expdir}/reports/vc_${set}_wavenet" \
        --max-sentences "${vc_sentences}" --vocoder-model "${vocoder_dir}/vocoder.pt" --no-progress
    done
  fi
fi
log "Done (stages ${stage}..${stop_stage}${skip_stages:+, without ${skip_stages}})"
