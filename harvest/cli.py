"""``python -m harvest SOURCE... [--workspace DIR]``: the command users start with."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from yt_dlp.cookies import SUPPORTED_BROWSERS, SUPPORTED_KEYRINGS

from whcore.cli import EXIT_USER_ERROR, make_parser, non_negative_float, positive_int
from whcore.errors import UserError

from harvest.doctor import run_checks
from harvest.jsruntime import parse_component, parse_runtime
from harvest.license import ALL_KINDS, DEFAULT_ACCEPTED, parse_accepted
from harvest.options import CHANNEL_TABS, DEFAULT_JOBS, DEFAULT_RETRIES, DEFAULT_SLEEP_S, DEFAULT_TABS, \
    HarvestOptions
from harvest.outcome import any_failed, summary_table
from harvest.politeness import DEFAULT_MAX_BLOCKS, DEFAULT_SLEEP_ENTRY_S, DEFAULT_SLEEP_REQUESTS_S
from harvest.runner import harvest
from harvest.sources import read_batch_file
from harvest.subtitles import is_valid_lang

EXIT_OK = 0  # everything done or skipped by rule
EXIT_SOME_FAILED = 1  # some entries failed, or the site blocked us; a rerun retries them
DOCTOR_COMMAND = "doctor"
BROWSER_SPEC = re.compile(r"(?P<name>[^+:]+)(?:\+(?P<keyring>[^:]+))?(?::(?!:)(?P<profile>.+?))?"
                          r"(?:::(?P<container>.+))?")

DESCRIPTION = """\
Collect long-form audio into a workspace: Creative Commons videos from YouTube
playlists, channels, searches and single videos (any site yt-dlp supports),
podcast feeds, and local media files or folders. Only audio is downloaded;
non-CC entries are logged and remembered, never downloaded.

examples:
  python -m harvest doctor          # check yt-dlp, JavaScript runtime, ffmpeg before a long crawl
  python -m harvest "https://www.youtube.com/playlist?list=PL..." --workspace corpus
  python -m harvest "https://www.youtube.com/@handle" --limit 20 --subs en
  python -m harvest recordings/ lecture.mp3 --workspace corpus

exit codes: 0 everything done or skipped by rule (licence, duplicate, unavailable,
live); 1 some entries failed or the site blocked the run (rerun to retry);
2 bad arguments or a busy workspace.
"""


def _one_line_error(message: str) -> NoReturn:
    """argparse's error, as the single ``error:`` line every stage prints, exit 2."""
    print(f"error: {message} (see python -m harvest --help)", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("python -m harvest", DESCRIPTION)
    parser.error = _one_line_error  # type: ignore[method-assign]
    parser.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="URL (playlist, channel, video, search), local media file, folder or feed file")
    parser.add_argument("--batch-file", type=Path, metavar="FILE",
                        help="read more SOURCEs from FILE, one per line (# starts a comment)")
    parser.add_argument("--allow-any-license", action="store_true",
                        help="download whatever the licence (recorded per source); default: Creative Commons only")
    parser.add_argument("--accept-licenses", default=None, metavar="KINDS",
                        help=f"also accept these licence kinds (comma list of {', '.join(ALL_KINDS)}); "
                             f"always accepted: {', '.join(sorted(DEFAULT_ACCEPTED))}")
    parser.add_argument("--recheck-rejected", action="store_true",
                        help="extract entries rejected for their licence on earlier runs again")
    parser.add_argument("--recheck-unavailable", action="store_true",
                        help="extract entries that were private, removed, members-only or age-gated again")
    parser.add_argument("--sleep", type=non_negative_float, default=DEFAULT_SLEEP_S, metavar="SECONDS",
                        help="pause before each download (randomised up to twice this); 0 disables")
    parser.add_argument("--sleep-requests", type=non_negative_float, default=DEFAULT_SLEEP_REQUESTS_S,
                        metavar="SECONDS", help="pause between the site requests of listing and extraction")
    parser.add_argument("--sleep-entry", type=non_negative_float, default=DEFAULT_SLEEP_ENTRY_S,
                        metavar="SECONDS", help="pause before each entry that needs a full extraction "
                        "(entries decided on earlier runs cost no request and no pause)")
    parser.add_argument("--max-blocks", type=positive_int, default=DEFAULT_MAX_BLOCKS, metavar="N",
                        help="stop the run after N blocked answers in a row (HTTP 429, bot check, "
                             "'try again later'); a rerun resumes")
    parser.add_argument("--jobs", type=positive_int, default=DEFAULT_JOBS, metavar="N",
                        help="entries harvested in parallel")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="take the first N videos of each SOURCE (across all of a channel's tabs)")
    parser.add_argument("--tabs", default=",".join(DEFAULT_TABS), metavar="TABS",
                        help=f"channel tabs to take (comma list of {', '.join(CHANNEL_TABS)})")
    parser.add_argument("--retries", type=positive_int, default=DEFAULT_RETRIES, metavar="N",
                        help="retries per request, with exponential backoff")
    parser.add_argument("--cookies", type=Path, metavar="FILE",
                        help="Netscape cookies.txt for yt-dlp (age-gated or members-only videos)")
    parser.add_argument("--cookies-from-browser", metavar="BROWSER[+KEYRING][:PROFILE][::CONTAINER]",
                        help="let yt-dlp read cookies from a local browser profile")
    parser.add_argument("--subs", default=None, metavar="LANGS",
                        help="save uploaded subtitles in these languages (comma list, e.g. zh-TW,zh,en) "
                             "as reference transcripts")
    parser.add_argument("--auto-subs", action="store_true",
                        help="with --subs, also save automatic captions (the video's own language, never "
                             "machine translations) where no manual track exists")
    parser.add_argument("--js-runtimes", action="append", default=[], metavar="RUNTIME[:PATH]",
                        help="also let yt-dlp use this JavaScript runtime (node, bun, quickjs) for "
                             "YouTube's challenges; deno from the venv is always enabled; repeatable")
    parser.add_argument("--remote-components", action="append", default=[], metavar="COMPONENT",
                        help="let yt-dlp fetch this component when needed (ejs:github, ejs:npm); repeatable")
    parser.add_argument("--check", action="store_true",
                        help="check the set-up (same as `python -m harvest doctor`) and exit")
    return parser


def parse_browser(spec: str | None) -> tuple | None:
    """yt-dlp's (browser, profile, keyring, container) from ``--cookies-from-browser``."""
    if spec is None:
        return None
    match = BROWSER_SPEC.fullmatch(spec.strip())
    name = match.group("name").strip().lower() if match else ""
    if name not in SUPPORTED_BROWSERS:
        raise UserError(f"--cookies-from-browser {spec}: unknown browser; use one of "
                        f"{', '.join(sorted(SUPPORTED_BROWSERS))}")
    keyring = match.group("keyring")
    if keyring is not None and keyring.upper() not in SUPPORTED_KEYRINGS:
        raise UserError(f"--cookies-from-browser {spec}: unknown keyring; use one of "
                        f"{', '.join(sorted(SUPPORTED_KEYRINGS))}")
    return (name, match.group("profile"), keyring.upper() if keyring else None, match.group("container"))


def options_from_args(args: argparse.Namespace) -> HarvestOptions:
    """Validate the parsed flags into HarvestOptions (UserError on bad input)."""
    sources = list(args.sources)
    if args.batch_file is not None:
        sources += read_batch_file(args.batch_file)
    if not sources:
        raise UserError("no SOURCE given: pass a URL, a media file or folder, or --batch-file FILE")
    if args.cookies is not None and not args.cookies.is_file():
        raise UserError(f"--cookies {args.cookies}: no such file; export a Netscape cookies.txt "
                        "from your browser or use --cookies-from-browser")
    languages = tuple(lang.strip() for lang in (args.subs or "").split(",") if lang.strip())
    bad = [lang for lang in languages if not is_valid_lang(lang)]
    if bad:
        raise UserError(f"--subs {args.subs}: {', '.join(map(repr, bad))} is not a language code; "
                        "use codes like en, en-US, zh-TW")
    if args.auto_subs and not languages:
        raise UserError("--auto-subs needs --subs LANGS to say which languages to save")
    return HarvestOptions(
        sources=tuple(sources), allow_any_license=args.allow_any_license,
        accepted_licenses=DEFAULT_ACCEPTED | _parsed("--accept-licenses", parse_accepted, args.accept_licenses or ""),
        recheck_rejected=args.recheck_rejected, recheck_unavailable=args.recheck_unavailable,
        sleep_s=args.sleep, sleep_requests_s=args.sleep_requests, sleep_entry_s=args.sleep_entry,
        max_blocks=args.max_blocks, jobs=args.jobs, limit=args.limit, tabs=parse_tabs(args.tabs),
        cookies=args.cookies.resolve() if args.cookies else None,
        cookies_from_browser=parse_browser(args.cookies_from_browser),
        subtitle_langs=languages, auto_subs=args.auto_subs, retries=args.retries,
        js_runtimes=tuple(_parsed("--js-runtimes", parse_runtime, spec) for spec in args.js_runtimes),
        remote_components=tuple(_parsed("--remote-components", parse_component, c) for c in args.remote_components))


def _parsed(flag: str, parse, text: str):  # noqa: ANN001, ANN202 - a thin ValueError -> UserError bridge
    try:
        return parse(text)
    except ValueError as error:
        message = str(error)
        raise UserError(message if message.startswith("--") else f"{flag} {text}: {message}") from None


def parse_tabs(text: str) -> tuple[str, ...]:
    """``--tabs`` as a tuple of known tab names (UserError names an unknown one)."""
    tabs = tuple(dict.fromkeys(tab.strip().lower() for tab in text.split(",") if tab.strip()))
    unknown = [tab for tab in tabs if tab not in CHANNEL_TABS]
    if unknown or not tabs:
        raise UserError(f"--tabs {text}: use a comma list of {', '.join(CHANNEL_TABS)}")
    return tabs


def doctor(args: argparse.Namespace) -> int:
    """Print one line per set-up check; 1 if anything a real crawl needs is missing."""
    if args.cookies is not None and not args.cookies.is_file():
        raise UserError(f"--cookies {args.cookies}: no such file; export a Netscape cookies.txt first")
    runtimes = tuple(_parsed("--js-runtimes", parse_runtime, spec) for spec in args.js_runtimes)
    checks = run_checks(args.cookies, parse_browser(args.cookies_from_browser), runtimes)
    for check in checks:
        print(check.line())
    missing = [check.name for check in checks if not check.ok]
    print(f"not ready: fix {', '.join(missing)} (lines above)" if missing else "ready for YouTube")
    return EXIT_SOME_FAILED if missing else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    is_doctor = bool(argv) and argv[0] == DOCTOR_COMMAND and not Path(DOCTOR_COMMAND).exists()
    args = build_parser().parse_args(argv[1:] if is_doctor else argv)
    if is_doctor or args.check:
        return doctor(args)
    options = options_from_args(args)
    if Path(args.workspace).exists() and not Path(args.workspace).is_dir():
        raise UserError(f"--workspace {args.workspace} is a file: pass a folder (it is created if missing)")
    result = harvest(args.workspace, options, verbose=args.verbose)
    print(summary_table(result.outcomes))
    if result.stopped:
        print(result.stopped)
    print(f"sources: {Path(args.workspace).resolve() / 'sources'} (manifest.jsonl lists them)")
    return EXIT_SOME_FAILED if result.stopped or any_failed(result.outcomes) else EXIT_OK
