"""``vqspeech encode``: codes for every utterance of a data dir, one line each.

    vqspeech encode --model exp/default/checkpoint.pt --data-dir data/test --output exp/default/codes/test.txt
Output lines: ``<utt> <code> <code> ...`` (one code per hop samples).  ``--features`` also
writes the continuous encoder outputs (before quantisation) as an .npz keyed by utterance.
"""

from __future__ import annotations

import sys

from ..devices import resolve_device
from .common import add_model_args, load_model_arg, report_failures
from .runner import parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech encode", __doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--output", required=True, help="codes text file")
    p.add_argument("--features", default=None, help="optional .npz of continuous encoder outputs (F, D)")
    args = p.parse_args(argv)

    def work() -> int:
        import numpy as np

        from ..audio import audio_info, load_audio
        from ..conversion import encode_file, encode_wav, require_one_code
        from ..kaldi_data_dir import read_data_dir
        from ..errors import UserError
        from ..fileio import atomic_path, atomic_write

        lm = load_model_arg(args.model, resolve_device(args.device))
        dd = read_data_dir(args.data_dir)
        lines, feats, failures = [], {}, []
        for utt in dd.utterances:
            path, start, end = dd.audio_of(utt)
            try:
                if start == 0.0 and end is None:  # whole files stream in bounded memory
                    frames, sr, _ = audio_info(path)
                    require_one_code(np.zeros(int(frames * lm.sample_rate / sr)), lm.hop, lm.sample_rate, path)
                    out = encode_file(lm.model, path, lm.sample_rate, return_features=bool(args.features))
                else:
                    wav = load_audio(path, lm.sample_rate, start, end)
                    require_one_code(wav, lm.hop, lm.sample_rate, f"{path} ({utt})")
                    out = encode_wav(lm.model, wav, sample_rate=lm.sample_rate, return_features=bool(args.features))
            except UserError as exc:
                failures.append(str(exc))
                continue
            if args.features:
                codes, z = out
                feats[utt] = z.astype(np.float32)
            else:
                codes = out
            lines.append(f"{utt} {' '.join(map(str, codes.tolist()))}\n")
        with atomic_write(args.output) as fh:
            fh.writelines(lines)
        if args.features:
            with atomic_path(args.features) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, **feats)
        print(f"{args.output}: {len(lines)} utterances, {lm.sample_rate / lm.hop:.1f} codes/s")
        return report_failures("vqspeech encode", failures, len(dd.utt2spk), "utterances")

    return run_user_command(work, args.verbose, prog="vqspeech encode")


if __name__ == "__main__":
    sys.exit(main())
