"""Command-line front ends.  Thin: parse arguments, call a library function, exit.

``vqspeech <subcommand> ...``; each subcommand's ``main(argv)`` can be called by tests.
User errors (:class:`vqspeech.errors.UserError`) print one line on stderr and exit 2;
``--verbose`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable

from .errors import UserError


def run_user_command(fn: Callable[[], int], verbose: bool = False, prog: str = "vqspeech") -> int:
    """Run ``fn``; turn a UserError into a one-line message and exit status 2."""
    try:
        return fn()
    except UserError as exc:
        if verbose:
            traceback.print_exc()
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _validate_data_dir(argv: list[str]) -> int:
    from .datadir import read_data_dir

    p = argparse.ArgumentParser(prog="vqspeech validate-data-dir",
                                description="Check a Kaldi data directory (sorting, keys, consistency, audio).")
    p.add_argument("data_dir")
    p.add_argument("--no-audio", action="store_true", help="skip opening the audio files")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)

    def work() -> int:
        dd = read_data_dir(args.data_dir, check_audio=not args.no_audio)
        extra = [name for name, t in (("text", dd.text), ("segments", dd.segments), ("utt2dur", dd.utt2dur))
                 if t is not None] + dd.optional_tables
        print(f"{args.data_dir}: OK: {len(dd.utt2spk)} utterances, {len(dd.speakers)} speakers"
              + (f" (+ {', '.join(extra)})" if extra else ""))
        return 0

    return run_user_command(work, args.verbose)


def _fix_data_dir(argv: list[str]) -> int:
    from .datadir_fix import fix_data_dir

    p = argparse.ArgumentParser(prog="vqspeech fix-data-dir",
                                description="Kaldi's fix_data_dir.sh: sort, deduplicate, keep the utterances present "
                                            "in every table, regenerate spk2utt (in place).")
    p.add_argument("data_dir")
    p.add_argument("--verbose", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)

    def work() -> int:
        report = fix_data_dir(args.data_dir)
        for line in report.lines():
            print(f"{args.data_dir}: {line}")
        return 0

    return run_user_command(work, args.verbose)


def _demo(argv: list[str]) -> int:
    from .demo_app import main as demo_main

    return demo_main(argv)


# name -> (module, function, one-line description). Modules are imported only when their command
# runs, so listing the commands does not import torch.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate-data-dir": ("vqspeech.cli", "_validate_data_dir", "check a Kaldi data directory (Kaldi's verdicts)"),
    "fix-data-dir": ("vqspeech.cli", "_fix_data_dir", "repair a data directory like Kaldi's fix_data_dir.sh"),
    "make-mini-corpus": ("vqspeech.corpora.mini", "main", "synthesize the mini corpus (flite/festival voices)"),
    "prepare-vctk": ("vqspeech.corpora.vctk", "main", "make data directories from a VCTK tree"),
    "train": ("vqspeech.bin.train", "main", "train a VQ-VAE (resumes; torchrun + DDP for many processes)"),
    "encode": ("vqspeech.bin.encode", "main", "codes (and encoder features) of a data directory"),
    "decode": ("vqspeech.bin.decode", "main", "codes file + speaker -> audio"),
    "convert-voice": ("vqspeech.bin.convert_voice", "main", "voice conversion of files or data directories"),
    "phone-report": ("vqspeech.bin.phone_report", "main", "how well the codes match phones (ABX, purity, ...)"),
    "align": ("vqspeech.forced_align", "main", "pocketsphinx forced alignment -> phones.ctm"),
    "vc-eval": ("vqspeech.evaluation.vc_eval", "main", "evaluate voice conversion (MCD, F0, speaker, WER)"),
    "demo": ("vqspeech.cli", "_demo", "the Gradio demo in the browser"),
}


def _command(name: str) -> Callable[[list[str]], int]:
    import importlib

    module, function, _ = COMMANDS[name]
    return getattr(importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        width = max(map(len, COMMANDS))
        print("usage: vqspeech <command> [options]\n\ncommands:\n" +
              "\n".join(f"  {name:<{width}}  {desc}" for name, (_, _, desc) in COMMANDS.items()) +
              "\n\n'vqspeech <command> --help' for details")
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"vqspeech {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"vqspeech: error: unknown command {name!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return _command(name)(rest)


if __name__ == "__main__":
    raise SystemExit(main())
