"""What each vocoder loses by itself: WER of test utterances re-synthesized from their *real*
log-mel frames (no VQ-VAE involved), beside the recordings.

    python local/vocoder_ceiling.py [--every 5] [--vocoder-model exp/vocoder/vocoder.pt]   (run from egs/mini)

Rows: the recordings; Griffin-Lim (32 iterations) from the true linear magnitude (phase
reconstruction alone), from the true 80-band mel (the spectral configs' frames) and from 128
bands (the mel inverted to a linear magnitude by non-negative least squares first); the WaveNet
vocoder from the 80-band frames (with --vocoder-model).
"""

import argparse
import time

import numpy as np
import torch

from vqspeech.audio import load_audio
from vqspeech.conversion import decode_many
from vqspeech.generation import SamplingOptions
from vqspeech.kaldi_data_dir import read_data_dir
from vqspeech.models.mel import mel_filterbank, mel_to_linear
from vqspeech.models.spectral import log_magnitude, log_mel_frames
from vqspeech.vc_eval.intelligibility import word_errors
from vqspeech.vocoders import griffin_lim


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="data/test")
    p.add_argument("--every", type=int, default=5, help="every N-th utterance (5: 20 of the 100)")
    p.add_argument("--vocoder-model", default=None)
    args = p.parse_args()
    dd = read_data_dir(args.data_dir)
    utts = dd.utterances[:: args.every]
    sr, n_fft, hop = 16000, 1024, 256
    fbank = mel_filterbank(sr, n_fft, 80)
    fbank128 = mel_filterbank(sr, n_fft, 128)
    vocoder = None
    if args.vocoder_model:
        from vqspeech.wavenet_vocoder import load_vocoder

        vocoder = load_vocoder(args.vocoder_model)

    def true_mel(wav, bank=fbank):
        w = torch.from_numpy(wav[: len(wav) // hop * hop])[None]
        return log_mel_frames(w, bank, n_fft, hop, 1e-5)

    def gl(wav, utt, bank=fbank):
        return griffin_lim(mel_to_linear(true_mel(wav, bank).exp(), bank), n_fft, hop, 32)[0].numpy()

    def gl_linear(wav, utt):
        w = torch.from_numpy(wav[: len(wav) // hop * hop])[None]
        return griffin_lim(log_magnitude(w, n_fft, hop, 1e-5).exp(), n_fft, hop, 32)[0].numpy()

    def wavenet(wav, utt):
        row = vocoder.speaker_index(dd.utt2spk[utt])
        return decode_many(vocoder.model, [true_mel(wav)[0].t()], [row], SamplingOptions(seed=0))[0]

    systems = {"recordings": lambda wav, utt: wav, "griffin-lim from the true linear magnitude": gl_linear,
               "griffin-lim from the true mel": gl,
               "griffin-lim from the true 128-band mel": lambda wav, utt: gl(wav, utt, fbank128)}
    if vocoder is not None:
        systems["WaveNet vocoder from the true mel"] = wavenet
    print(f"| system ({len(utts)} utterances of {args.data_dir}) | WER | errors / words | seconds |")
    print("|---|---:|---:|---:|")
    for name, fn in systems.items():
        errs = words = 0
        t0 = time.perf_counter()
        for u in utts:
            path, start, end = dd.audio_of(u)
            wav = load_audio(path, sr, start, end).astype(np.float32)
            e, n, _ = word_errors(dd.text[u], fn(wav, u))
            errs, words = errs + e, words + n
        print(f"| {name} | {100 * errs / words:.1f}% | {errs} / {words} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    # a model or data directory that does not read: one line, exit 2
    raise SystemExit(run_user_command(main, prog=__file__.rsplit("/", 1)[-1]))
