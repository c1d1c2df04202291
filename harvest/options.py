"""The options of one harvest run, as one frozen object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_SLEEP_S = 5.0  # seconds before each online download (yt-dlp randomises up to twice this)
DEFAULT_JOBS = 2  # parallel online downloads: small, to stay polite
DEFAULT_RETRIES = 10  # yt-dlp retries per request / fragment, with exponential backoff


@dataclass(frozen=True)
class HarvestOptions:
    """What to harvest and how politely."""

    sources: tuple[str, ...]  # URLs, local files, local folders, feed files
    allow_any_license: bool = False  # opt out of the Creative Commons gate
    recheck_rejected: bool = False  # extract ids rejected on earlier runs again
    sleep_s: float = DEFAULT_SLEEP_S
    jobs: int = DEFAULT_JOBS
    limit: int | None = None  # at most this many entries from each SOURCE
    cookies: Path | None = None  # Netscape cookies.txt passed to yt-dlp
    cookies_from_browser: tuple | None = None  # yt-dlp's (browser, profile, keyring, container)
    subtitle_langs: tuple[str, ...] = ()  # uploaded subtitle languages to save
    auto_subs: bool = False  # also accept automatic captions for those languages
    retries: int = DEFAULT_RETRIES
