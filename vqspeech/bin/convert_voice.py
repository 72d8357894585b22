"""``convert-voice``: say it in another speaker's voice.

    convert-voice --model exp/default/checkpoint.pt --input in.wav --target-speaker slt --output out.wav
    convert-voice --model M --list-speakers
    convert-voice --model M --data-dir data/test --target-speaker slt --output-dir out/   (batch)
    convert-voice --model M --data-dir data/test --all-pairs 1 --output-dir out/   (every speaker pair)
    convert-voice --model M --list jobs.txt            (lines: <input> <target speaker> <output>)
    convert-voice --model M --input in.wav --target-audio ref.wav [ref2.wav ...] --output out.wav
        (a voice given by recordings; needs a model trained with speaker_conditioning: reference)
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..devices import resolve_device
from ..generation.registry import choose_method
from .common import (add_intonation_arg, add_model_args, add_sampling_args, load_model_arg, report_failures,
                     sampling_from_args, speaker_index, vocoder_from_args)

from .runner import parser, run_user_command, int_at_least

def _jobs(args, lm) -> list[tuple[str, str, float, float | None, str, Path]]:
    """[(name, input path, start, end, target speaker, output path)] from the arguments."""
    from ..kaldi_data_dir import read_data_dir
    from ..errors import UserError
    from ..ids import path_in

    target = _target_name(args)
    if args.input:
        if not args.output or not target:
            raise UserError("--input needs --output and --target-speaker (or --target-audio)")
        return [(args.input, args.input, 0.0, None, target, Path(args.output))]
    if args.target_audio and (args.all_pairs is not None or args.list):
        raise UserError("--target-audio goes with --input or --data-dir")
    if args.data_dir and args.all_pairs is not None:
        if not args.output_dir:
            raise UserError("--all-pairs needs --output-dir")
        dd = read_data_dir(args.data_dir)
        out = []
        for src, utts in dd.spk2utt.items():  # the first N utterances of each speaker, to every other speaker
            for utt in utts[: args.all_pairs]:
                path, start, end = dd.audio_of(utt)
                out += [(utt, path, start, end, tgt, path_in(args.output_dir, f"{src}_to_{tgt}", f"{utt}.wav"))
                        for tgt in lm.speakers if tgt != src]
        return out
    if args.data_dir:
        if not args.output_dir or not target:
            raise UserError("--data-dir needs --output-dir and --target-speaker or --target-audio (or --all-pairs N)")
        dd = read_data_dir(args.data_dir)
        out = []
        for utt in dd.utterances:
            path, start, end = dd.audio_of(utt)
            label = target[len(REFERENCE_PREFIX):] if target.startswith(REFERENCE_PREFIX) else target
            out.append((utt, path, start, end, target, path_in(args.output_dir, f"{utt}_to_{label}.wav")))
        return out
    if args.list:
        out = []
        try:
            lines = Path(args.list).read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{args.list}: cannot read job list ({exc})") from None
        for no, line in enumerate(lines, 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) != 3:
                raise UserError(f"{args.list}:{no}: expected '<input> <target speaker> <output>', got {line!r}")
            out.append((parts[0], parts[0], 0.0, None, parts[1], Path(parts[2])))
        return out
    raise UserError("give --input, --data-dir or --list (or --list-speakers)")


REFERENCE_PREFIX = "reference:"


def _target_name(args) -> str | None:
    """The target as jobs name it: a speaker id, or ``reference:<first reference's stem>``."""
    from ..errors import UserError

    if args.target_speaker and args.target_audio:
        raise UserError("give --target-speaker or --target-audio, not both")
    if args.target_audio:
        return REFERENCE_PREFIX + Path(args.target_audio[0]).stem
    return args.target_speaker


def _targets(args, lm, jobs) -> dict:
    """Each job's target -> what the model takes: a speaker index, or the references' d-vector."""
    from ..errors import UserError

    out = {}
    for job in jobs:
        name = job[4]
        if name in out:
            continue
        if name.startswith(REFERENCE_PREFIX) and args.target_audio:
            if not getattr(lm.model, "reference", False):
                raise UserError("--target-audio: this model conditions on a table of training speakers; train one "
                                "with 'speaker_conditioning: reference' (or learned) (README: converting to an unheard voice)")
            from ..speaker_reference import reference_embedding

            out[name] = reference_embedding(args.target_audio, model=lm.model)
        else:
            out[name] = speaker_index(lm, name)
    return out


def _refuse_overwriting_inputs(jobs, overwrite: bool) -> None:
    """An output that is one of the inputs (same resolved path or inode) is refused before anything runs."""
    from ..errors import UserError
    from ..ids import same_file

    if overwrite:
        return
    inputs = {str(Path(j[1]).resolve()): j[1] for j in jobs}
    for name, path, _, _, _, out in jobs:
        hit = inputs.get(str(out.resolve()))
        if hit is None and out.exists():
            hit = next((i for i in inputs.values() if same_file(i, out)), None)
        if hit is not None:
            raise UserError(f"{out}: the output would overwrite the input {hit}; choose another output "
                            f"or pass --overwrite")


def main(argv: list[str] | None = None) -> int:
    p = parser("convert-voice", "Voice conversion with a VQ-VAE.", epilog=__doc__)
    add_model_args(p)
    p.add_argument("--input", help="audio file (wav, flac, ...; any rate and channel count)")
    p.add_argument("--output", help="output wav (with --input)")
    p.add_argument("--target-speaker", help="speaker id from --list-speakers")
    p.add_argument("--target-audio", nargs="+", metavar="REF",
                   help="the target voice as recordings (a few seconds of speech in all; reference models only)")
    p.add_argument("--data-dir", help="batch: convert every utterance of a Kaldi data dir")
    p.add_argument("--output-dir", help="batch: where <utt>_to_<speaker>.wav files go")
    p.add_argument("--all-pairs", type=int_at_least(1), default=None, metavar="N",
                   help="batch: the first N utterances of each speaker of --data-dir to every other speaker of "
                        "the model, into <output-dir>/<src>_to_<tgt>/<utt>.wav")
    p.add_argument("--list", help="batch: a file of '<input> <target speaker> <output>' lines")
    p.add_argument("--list-speakers", action="store_true", help="print the model's speakers and exit")
    p.add_argument("--overwrite", action="store_true",
                   help="allow an output path that is one of the input files (replaces the recording)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_sampling_args(p)
    add_intonation_arg(p)
    args = p.parse_args(argv)


    def work() -> int:
        from ..audio import load_audio, save_audio
        from ..conversion import check_intonation, convert, require_one_code
        from ..errors import UserError

        device = resolve_device(args.device)
        lm = load_model_arg(args.model, device)
        if args.list_speakers:
            print("\n".join(lm.speakers))
            return 0
        check_intonation(lm.model, args.intonation, "--intonation")
        opts = sampling_from_args(args)
        method = choose_method(args.method, device)
        vocoder = vocoder_from_args(args, lm, method, device)
        jobs = _jobs(args, lm)
        targets = _targets(args, lm, jobs)  # every target checked before spending time on the first job
        _refuse_overwriting_inputs(jobs, args.overwrite)
        from tqdm import tqdm

        failures = []
        total_audio = total_time = 0.0
        bar = tqdm(jobs, desc="convert", unit="utt", disable=args.no_progress or len(jobs) < 2)
        for name, path, start, end, target, out_path in bar:
            try:
                wav = load_audio(path, lm.sample_rate, start, end)
                require_one_code(wav, lm.hop, lm.sample_rate, path)
                res = convert(lm.model, wav, targets[target], lm.sample_rate, opts, method,
                              fold=not args.no_fold, max_batch=args.max_batch, vocoder=vocoder,
                              warmup=args.warmup_samples, intonation=args.intonation)
                save_audio(out_path, res.wav, lm.sample_rate)
            except UserError as exc:
                if len(jobs) == 1:
                    raise
                failures.append(f"{name}: {exc}")
                continue
            total_audio += res.audio_seconds
            total_time += res.seconds
            bar.set_postfix(rtf=f"{total_audio / max(total_time, 1e-9):.2f}x")
            if len(jobs) == 1 or args.no_progress:
                how = (vocoder if isinstance(vocoder, str) else f"WaveNet vocoder, {method}") \
                    if lm.model.decoder_kind == "spectral" else method
                print(f"{out_path}: {res.audio_seconds:.2f} s of audio in {res.seconds:.2f} s "
                      f"({res.real_time_factor:.2f}x real time, {how})")
        if len(jobs) > 1:
            print(f"converted {len(jobs) - len(failures)}/{len(jobs)} utterances, "
                  f"{total_audio:.1f} s of audio at {total_audio / max(total_time, 1e-9):.2f}x real time")
        return report_failures("convert-voice", failures, len(jobs), "conversions")

    return run_user_command(work, args.verbose, prog="convert-voice")


if __name__ == "__main__":
    sys.exit(main())
