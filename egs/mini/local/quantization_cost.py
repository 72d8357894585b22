"""How much intelligibility the codebook costs: resynthesize test utterances by a spectral model
from its codes and from its continuous encoder outputs (the quantizer skipped), same decoder,
same speaker, Griffin-Lim, and score both with pocketsphinx WER.

    python local/quantization_cost.py --model exp/spectral_mel_melenc_long/checkpoint.pt [--every 4]
                                                                           (run from egs/mini)
"""

import argparse

import torch

from vqspeech.audio import load_audio
from vqspeech.checkpoint import load_model
from vqspeech.conversion import speaker_batch
from vqspeech.kaldi_data_dir import read_data_dir
from vqspeech.vc_eval.intelligibility import word_errors
from vqspeech.vocoders import frames_to_audio


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", default="data/test")
    p.add_argument("--every", type=int, default=4, help="every N-th utterance (4: 25 of the 100)")
    args = p.parse_args()
    lm = load_model(args.model)
    m = lm.model
    if m.decoder_kind != "spectral":
        raise SystemExit(f"{args.model}: a spectral model is needed")
    dd = read_data_dir(args.data_dir)
    utts = dd.utterances[:: args.every]
    errors = {"codes": [0, 0], "continuous encoder outputs": [0, 0]}
    with torch.no_grad():
        for u in utts:
            path, start, end = dd.audio_of(u)
            wav = load_audio(path, lm.sample_rate, start, end)
            w = torch.from_numpy(wav[: len(wav) // m.hop * m.hop])[None]
            enc = m.encode(w)
            g = m.speaker_vectors(speaker_batch(m, [lm.speakers.index(dd.utt2spk[u])], "cpu"))
            for name, z in (("codes", enc["z_q"]), ("continuous encoder outputs", enc["z"])):
                audio = frames_to_audio(m, m.decoder(z, g))[0].numpy()
                e, n, _ = word_errors(dd.text[u], audio)
                errors[name][0] += e
                errors[name][1] += n
    print(f"| decoded from ({len(utts)} utterances of {args.data_dir}) | resynthesis WER | errors / words |")
    print("|---|---:|---:|")
    for name, (e, n) in errors.items():
        print(f"| {name} | {100 * e / n:.1f}% | {e} / {n} |")


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    # a model or data directory that does not read: one line, exit 2
    raise SystemExit(run_user_command(main, prog=__file__.rsplit("/", 1)[-1]))
