"""What every stage CLI shares: the workspace flag, the error policy and the exit codes.

Exit codes, the same for every stage:

* 0 when every item is done or skipped by a rule (already done, duplicate, too short);
* 1 when some items failed (each logged in one line; the run still went on), or the
  disk filled up (one line; nothing half-written counts, a rerun resumes);
* 2 for bad arguments (argparse's own errors too) or a busy workspace: a
  ``UserError`` becomes one ``error: ...`` line;
* 130 on Ctrl-C, with a hint that a rerun resumes.

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import atexit
import errno
import os
import signal
import sys
import threading
from typing import Callable, NoReturn, Sequence

from whcore.errors import UserError
from whcore.quiet import quiet_libraries

EXIT_OK = 0
EXIT_ITEMS_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, quota, file size limit


def exit_code(failed: int) -> int:
    """The exit code of a run in which ``failed`` items failed (the others done or skipped)."""
    return EXIT_ITEMS_FAILED if failed else EXIT_OK


def is_disk_full(error: BaseException) -> bool:
    """True for the errors a full disk (or a quota / file-size limit) raises."""
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


def disk_full_message(error: OSError) -> str:
    """One line for a full disk: what could not be written and what to do."""
    where = f" writing {error.filename}" if error.filename else ""
    return (f"disk full{where} ({error.strerror}): free some space and rerun the same command; "
            "finished work is kept and nothing half-written counts")


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


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None,
             skip_teardown: bool = False) -> None:
    """Run a stage's ``main`` with the shared error policy and exit (``skip_teardown``: see ``hard_exit``)."""
    quiet_libraries()
    if hasattr(signal, "SIGXFSZ"):  # a file-size limit then fails the write (EFBIG), not the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        code = main(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        code = EXIT_USER_ERROR
    except OSError as error:
        if not is_disk_full(error):
            raise
        print(f"error: {disk_full_message(error)}", file=sys.stderr)
        code = EXIT_ITEMS_FAILED
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; rerun the same command to resume",
              file=sys.stderr)
        code = EXIT_INTERRUPTED
    if skip_teardown:
        hard_exit(code)
    sys.exit(code)


def hard_exit(code: int) -> NoReturn:
    """Exit without freeing every object one by one, as mypy does (``mypy.util.hard_exit``).

    ``status`` and a segment rerun over 100k units hold millions of small journal
    objects; Python's teardown freed them for 0.15–0.2 s of a ~1.9 s run, for nothing.
    The exit handlers still run (logging sinks are closed, finalizers called) and the
    standard streams are flushed; only the teardown is skipped, and only when no other
    non-daemon thread is alive (the normal exit would wait for it; daemon threads, such
    as tqdm's monitor, it would not).
    """
    main = threading.main_thread()
    if any(thread is not main and not thread.daemon for thread in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
