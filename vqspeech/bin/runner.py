"""Running a command: a user error becomes one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable

from ..errors import UserError


def run_user_command(fn: Callable[[], int], verbose: bool = False, prog: str = "vqspeech") -> int:
    """Run ``fn``; turn a UserError into a one-line message and exit status 2 (``verbose``: and the
    traceback)."""
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


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every command's --help shows defaults and keeps its examples' line breaks."""


def parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """An argument parser with the conventions every command shares: shown defaults, --verbose."""
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog, formatter_class=HelpFormatter)
    p.add_argument("--verbose", action="store_true", help="show the traceback of an error")
    return p
