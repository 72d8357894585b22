"""``vqspeech sample``: speech from the prior, in a chosen voice (the paper's unconditional samples).

    vqspeech sample --model M --prior P --speaker slt --seconds 3 --output out.wav [--temperature T --seed S]
    vqspeech sample ... --prompt in.wav          # continue the codes of a recording
``--codes-out F`` also writes the sampled codes (one line, ``vqspeech encode``'s format).
"""

from __future__ import annotations

import sys

from ..devices import resolve_device
from ..generation.registry import choose_method
from .common import (add_model_args, add_sampling_args, load_model_arg, sampling_from_args, speaker_index,
                     vocoder_from_args)
from .runner import parser, run_user_command, float_at_least


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech sample", __doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--prior", required=True, help="prior checkpoint (exp/<tag>/prior/prior.pt)")
    p.add_argument("--speaker", required=True, help="the voice to speak in")
    p.add_argument("--seconds", type=float_at_least(0, strictly=True), default=3.0, help="length of the sampled continuation")
    p.add_argument("--output", required=True, help="output .wav")
    p.add_argument("--prompt", default=None, help="a recording whose codes the sample continues")
    p.add_argument("--codes-out", default=None, help="also write the sampled codes here")
    add_sampling_args(p)
    args = p.parse_args(argv)

    def work() -> int:
        import numpy as np
        import torch

        from ..audio import load_audio, save_audio
        from ..codes_file import write_codes
        from ..conversion import decode_codes, encode_wav, require_one_code
        from ..errors import UserError
        from ..prior.sample import load_prior, sample_codes

        device = resolve_device(args.device)
        lm = load_model_arg(args.model, device)
        prior = load_prior(args.prior, device)
        K = lm.config.quantizer_conf.num_codes
        if prior.num_codes != K or prior.speakers != lm.speakers or prior.hop != lm.hop:
            raise UserError(f"--prior {args.prior}: was trained on the codes of another model "
                            f"({prior.num_codes} codes, speakers {prior.speakers}; this model has {K}, {lm.speakers})")
        spk = speaker_index(lm, args.speaker)
        opts = sampling_from_args(args)
        prompt: list[int] = []
        if args.prompt:
            wav = load_audio(args.prompt, lm.sample_rate)
            require_one_code(wav, lm.hop, lm.sample_rate, args.prompt)
            prompt = encode_wav(lm.model, wav, sample_rate=lm.sample_rate).tolist()
        n = max(1, round(args.seconds * lm.sample_rate / lm.hop))
        codes = prompt + sample_codes(prior.model, spk, n, opts, prompt)
        method = choose_method(args.method, device)
        vocoder = vocoder_from_args(args, lm, method, device)
        audio = decode_codes(lm.model, torch.tensor(codes), spk, opts, method, not args.no_fold, args.max_batch,
                             vocoder=vocoder, warmup=args.warmup_samples)
        save_audio(args.output, audio.astype(np.float32), lm.sample_rate)
        if args.codes_out:
            write_codes(args.codes_out, {f"sample_{args.speaker}_{args.seed}": codes})
        what = f"{len(prompt)} prompt codes + {n} sampled" if prompt else f"{n} sampled codes"
        print(f"wrote {args.output} ({what}, {len(audio) / lm.sample_rate:.2f} s, speaker {args.speaker})")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech sample")


if __name__ == "__main__":
    sys.exit(main())
