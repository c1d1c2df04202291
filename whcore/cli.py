"""What every stage CLI shares: the workspace flag and the error policy.

A ``UserError`` becomes one ``error: ...`` line and exit code 2; Ctrl-C exits
130 with a hint that a rerun resumes. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from whcore.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the description's line breaks.

    Defaults of None (the help text says what happens instead) and of on/off
    switches (a flag's name says it) are not printed: "(default: None)" tells
    a user nothing.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def make_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
    parser.add_argument("--workspace", default=".", help="corpus workspace folder (logs/log.txt, "
                        "sources/, windows/, labels/, dataset/, model/ live under it)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print debug lines")
    return parser


def _parse_number(text: str, convert: Callable[[str], float], ok: Callable[[float], bool],
                  rule: str, kind: str = "a number") -> float:
    """Convert ``text`` with ``convert`` and check it, with argparse's one-line errors."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{text} {rule}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a float > 0."""
    return _parse_number(text, float, lambda v: v > 0, "must be greater than 0")


def non_negative_float(text: str) -> float:
    """argparse type: a float >= 0."""
    return _parse_number(text, float, lambda v: v >= 0, "must not be negative")


def positive_int(text: str) -> int:
    """argparse type: an int > 0."""
    return int(_parse_number(text, int, lambda v: v > 0, "must be greater than 0", "a whole number"))


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> None:
    """Run a stage's ``main`` with the shared error policy and exit."""
    try:
        code = main(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        code = EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; rerun the same command to resume",
              file=sys.stderr)
        code = EXIT_INTERRUPTED
    sys.exit(code)
