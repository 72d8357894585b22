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


def _commands() -> dict[str, Callable[[list[str]], int]]:
    from .bin import convert_voice, decode, encode, phone_report, train
    from . import forced_align
    from .corpora import mini, vctk
    from .evaluation import vc_eval

    return {
        "validate-data-dir": _validate_data_dir,
        "fix-data-dir": _fix_data_dir,
        "make-mini-corpus": mini.main,
        "prepare-vctk": vctk.main,
        "train": train.main,
        "encode": encode.main,
        "decode": decode.main,
        "convert-voice": convert_voice.main,
        "phone-report": phone_report.main,
        "align": forced_align.main,
        "vc-eval": vc_eval.main,
        "demo": _demo,
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: vqspeech <command> [options]\n\ncommands:\n" +
              "\n".join(f"  {name}" for name in commands) + "\n\n'vqspeech <command> --help' for details")
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"vqspeech {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"vqspeech: error: unknown command {name!r}; choose from {', '.join(commands)}", file=sys.stderr)
        return 2
    return commands[name](rest)


if __name__ == "__main__":
    raise SystemExit(main())
