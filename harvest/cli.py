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

from harvest.options import DEFAULT_JOBS, DEFAULT_RETRIES, DEFAULT_SLEEP_S, HarvestOptions
from harvest.outcome import processed_any, summary_table
from harvest.runner import harvest
from harvest.sources import read_batch_file

EXIT_NOTHING_PROCESSED = 1
BROWSER_SPEC = re.compile(r"(?P<name>[^+:]+)(?:\+(?P<keyring>[^:]+))?(?::(?!:)(?P<profile>.+?))?"
                          r"(?:::(?P<container>.+))?")

DESCRIPTION = """\
Collect long-form audio into a workspace: Creative Commons videos from YouTube
playlists, channels, searches and single videos (any site yt-dlp supports),
podcast feeds, and local media files or folders. Only audio is downloaded;
non-CC entries are logged and remembered, never downloaded.

examples:
  python -m harvest "https://www.youtube.com/playlist?list=PL..." --workspace corpus
  python -m harvest "https://www.youtube.com/@handle/videos" --limit 20 --subs en
  python -m harvest recordings/ lecture.mp3 --workspace corpus
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
    parser.add_argument("--recheck-rejected", action="store_true",
                        help="extract entries rejected for their licence on earlier runs again")
    parser.add_argument("--sleep", type=non_negative_float, default=DEFAULT_SLEEP_S, metavar="SECONDS",
                        help="pause before each download (randomised up to twice this); 0 disables")
    parser.add_argument("--jobs", type=positive_int, default=DEFAULT_JOBS, metavar="N",
                        help="parallel downloads")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="take at most N entries from each playlist, channel or feed")
    parser.add_argument("--retries", type=positive_int, default=DEFAULT_RETRIES, metavar="N",
                        help="retries per request, with exponential backoff")
    parser.add_argument("--cookies", type=Path, metavar="FILE",
                        help="Netscape cookies.txt for yt-dlp (age-gated or members-only videos)")
    parser.add_argument("--cookies-from-browser", metavar="BROWSER[+KEYRING][:PROFILE][::CONTAINER]",
                        help="let yt-dlp read cookies from a local browser profile")
    parser.add_argument("--subs", default="", metavar="LANGS",
                        help="save uploaded subtitles in these languages (comma list, e.g. zh-TW,zh,en) "
                             "as reference transcripts")
    parser.add_argument("--auto-subs", action="store_true",
                        help="with --subs, also save automatic captions where no manual track exists")
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
    languages = tuple(lang.strip() for lang in args.subs.split(",") if lang.strip())
    if args.auto_subs and not languages:
        raise UserError("--auto-subs needs --subs LANGS to say which languages to save")
    return HarvestOptions(
        sources=tuple(sources), allow_any_license=args.allow_any_license,
        recheck_rejected=args.recheck_rejected, sleep_s=args.sleep, jobs=args.jobs, limit=args.limit,
        cookies=args.cookies.resolve() if args.cookies else None,
        cookies_from_browser=parse_browser(args.cookies_from_browser),
        subtitle_langs=languages, auto_subs=args.auto_subs, retries=args.retries)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = options_from_args(args)
    if Path(args.workspace).exists() and not Path(args.workspace).is_dir():
        raise UserError(f"--workspace {args.workspace} is a file: pass a folder (it is created if missing)")
    outcomes = harvest(args.workspace, options, verbose=args.verbose)
    print(summary_table(outcomes))
    print(f"sources: {Path(args.workspace).resolve() / 'sources'} (manifest.jsonl lists them)")
    return 0 if processed_any(outcomes) else EXIT_NOTHING_PROCESSED
