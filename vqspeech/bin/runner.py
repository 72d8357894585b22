"""Running a command: a user error becomes one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from typing import Callable, NoReturn

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


def exit_entry_point(code: int) -> NoReturn:
    """End an entry point's process (``python -m vqspeech...``, the ``vqspeech`` console script) with
    ``code``: ``sys.exit`` normally; in a torchrun worker (``WORLD_SIZE`` > 1) flush stdout and stderr
    and leave through ``os._exit``, skipping interpreter teardown. Why: with gloo (torch 2.13) a rank
    that had finished, destroyed its process group and written all its files now and then aborted
    while the interpreter shut down ("terminate called without an active exception", SIGABRT; 1 of
    379 two-process runs in a loop beside other load),
    and torchrun then reported the finished job as failed. Everything a command writes is closed
    before it returns (files renamed into place, TensorBoard closed), so nothing is lost by skipping
    the teardown."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every command's --help shows defaults and keeps its examples' line breaks."""


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (argparse's own message, then a pointer to --help)
    instead of the usage block and the message: the same shape as every other user error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """An argument parser with the conventions every command shares: shown defaults, --verbose,
    one-line errors."""
    p = OneLineErrorParser(prog=prog, description=description, epilog=epilog, formatter_class=HelpFormatter)
    p.add_argument("--verbose", action="store_true", help="show the traceback of an error")
    return p


def add_training_options(p: argparse.ArgumentParser,
                         until_help: str = "stop (with a checkpoint) at this step") -> None:
    """The options every training command shares: config overrides, how long, resuming, the device,
    the progress bar."""
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="override one value of the config (repeatable; the value is YAML), "
                        "e.g. --set train_conf.batch_size=32")
    p.add_argument("--max-steps", type=int_at_least(1), default=None, help="override train_conf.max_steps")
    p.add_argument("--until-step", type=int_at_least(1), default=None, help=until_help)
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if checkpoints exist")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda:LOCAL_RANK if available)")
    p.add_argument("--no-progress", action="store_true")


def int_at_least(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [minimum, maximum]; argparse names the option in the error."""
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
        if number < minimum or (maximum is not None and number > maximum):
            bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {number}")
        return number

    return parse


def float_at_least(minimum: float, *, strictly: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number >= minimum (> minimum when ``strictly``)."""
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
        if not math.isfinite(number) or number < minimum or (strictly and number == minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strictly else '>='} {minimum:g}, got {value}")
        return number

    return parse
