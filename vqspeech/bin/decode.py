"""``vqspeech decode``: codes (from ``vqspeech encode``) + a speaker -> audio.

    vqspeech decode --model M --codes exp/default/codes/test.txt --speaker slt --output-dir out/ [--utts a,b]
``--speaker own`` decodes each utterance with the speaker its id starts with (resynthesis).
"""

from __future__ import annotations

import sys

from ..devices import resolve_device
from ..generation.registry import choose_method
from .common import (add_model_args, add_sampling_args, load_model_arg, sampling_from_args, speaker_index,
                     vocoder_from_args)

from .runner import parser, run_user_command

def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech decode", __doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--codes", required=True)
    p.add_argument("--speaker", required=True, help="target speaker id, or 'own'")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--utts", default="", help="comma-separated subset of utterances")
    add_sampling_args(p)
    args = p.parse_args(argv)

    def work() -> int:
        import torch

        from ..audio import save_audio
        from ..conversion import decode_codes
        from ..errors import UserError
        from ..ids import path_in
        from ..codes_file import check_code_range, read_codes

        device = resolve_device(args.device)
        lm = load_model_arg(args.model, device)
        opts = sampling_from_args(args)
        method = choose_method(args.method, device)
        vocoder = vocoder_from_args(args, lm, method, device)
        codes = read_codes(args.codes)
        wanted = [u for u in args.utts.split(",") if u] or list(codes)
        K = lm.config.quantizer_conf.num_codes
        for utt in wanted:
            if utt not in codes:
                raise UserError(f"--utts: {utt!r} is not in {args.codes}")
            check_code_range({utt: codes[utt]}, K, args.codes)
            if args.speaker == "own":
                own = [s for s in lm.speakers if utt.startswith(s)]
                if not own:
                    raise UserError(f"--speaker own: no model speaker is a prefix of {utt!r}")
                spk = max(own, key=len)
            else:
                spk = args.speaker
            idx = speaker_index(lm, spk)
            wav = decode_codes(lm.model, torch.tensor(codes[utt]), idx, opts, method, not args.no_fold,
                               args.max_batch, vocoder=vocoder, warmup=args.warmup_samples)
            out = path_in(args.output_dir, f"{utt}_{spk}.wav")
            save_audio(out, wav, lm.sample_rate)
            print(f"wrote {out}")
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech decode")


if __name__ == "__main__":
    sys.exit(main())
