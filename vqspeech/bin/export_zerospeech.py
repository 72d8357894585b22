"""``vqspeech export-zerospeech``: a data directory's codes in ZeroSpeech file formats.

    vqspeech export-zerospeech --model M --data-dir data/test --output-dir exp/zr/test --format zr2019
Formats: zr2019 (one-hot codes), zr2021 (features, no times), times (features with frame times),
units (code ids); ``--features quantized|continuous`` for the feature formats.
"""

from __future__ import annotations

import sys

from ..devices import resolve_device
from .common import add_model_args, load_model_arg, report_failures
from .runner import parser, run_user_command


def main(argv: list[str] | None = None) -> int:
    from ..zerospeech import FEATURES, FORMATS

    p = parser("vqspeech export-zerospeech", __doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--format", default="zr2019", choices=FORMATS, help="file format")
    p.add_argument("--features", default="quantized", choices=FEATURES,
                   help="vectors for the zr2021 and times formats")
    args = p.parse_args(argv)

    def work() -> int:
        from pathlib import Path

        from ..audio import load_audio
        from ..conversion import encode_wav, require_one_code
        from ..errors import UserError
        from ..kaldi_data_dir import read_data_dir
        from ..zerospeech import write_manifest, write_utterance

        lm = load_model_arg(args.model, resolve_device(args.device))
        dd = read_data_dir(args.data_dir)
        K = lm.config.quantizer_conf.num_codes
        shift = lm.hop / lm.sample_rate
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        failures, done = [], 0
        for utt in dd.utterances:
            path, start, end = dd.audio_of(utt)
            try:
                wav = load_audio(path, lm.sample_rate, start, end)
                require_one_code(wav, lm.hop, lm.sample_rate, f"{path} ({utt})")
            except UserError as exc:
                failures.append(str(exc))
                continue
            codes, z = encode_wav(lm.model, wav, sample_rate=lm.sample_rate, return_features=True)
            feats = None
            if args.format in ("zr2021", "times"):
                if args.features == "continuous":
                    feats = z
                else:
                    import torch

                    with torch.no_grad():
                        feats = lm.model.quantizer.lookup(codes[None].to(next(lm.model.parameters()).device))
                    feats = feats[0].t().cpu().numpy()
            write_utterance(args.output_dir, utt, args.format, codes.numpy(), feats, K, shift)
            done += 1
        write_manifest(args.output_dir, args.format, args.features if args.format in ("zr2021", "times") else None,
                       shift, K, str(args.model or "shipped"), done)
        print(f"{args.output_dir}: {done} utterances in {args.format} format, frame shift {1000 * shift:g} ms")
        return report_failures("vqspeech export-zerospeech", failures, len(dd.utt2spk), "utterances")

    return run_user_command(work, args.verbose, prog="vqspeech export-zerospeech")


if __name__ == "__main__":
    sys.exit(main())
