"""The options of one harvest run, as one frozen object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harvest.license import DEFAULT_ACCEPTED
from harvest.politeness import DEFAULT_MAX_BLOCKS, DEFAULT_SLEEP_ENTRY_S, DEFAULT_SLEEP_REQUESTS_S

DEFAULT_SLEEP_S = 5.0  # seconds before each online download (yt-dlp randomises up to twice this)
DEFAULT_JOBS = 2  # parallel online entries: small, to stay polite
DEFAULT_RETRIES = 10  # yt-dlp retries per request / fragment, with exponential backoff
CHANNEL_TABS = ("videos", "streams", "shorts")  # channel tabs harvest can take
DEFAULT_TABS = ("videos", "streams")  # a channel's uploads and its past live streams


@dataclass(frozen=True)
class HarvestOptions:
    """What to harvest and how politely."""

    sources: tuple[str, ...]  # URLs, local files, local folders, feed files
    allow_any_license: bool = False  # opt out of the Creative Commons gate
    accepted_licenses: frozenset[str] = DEFAULT_ACCEPTED  # licence kinds the gate takes
    recheck_rejected: bool = False  # extract ids refused for their licence on earlier runs again
    recheck_unavailable: bool = False  # extract ids that were private/removed/members-only again
    sleep_s: float = DEFAULT_SLEEP_S  # before each download
    sleep_requests_s: float = DEFAULT_SLEEP_REQUESTS_S  # between extractor requests
    sleep_entry_s: float = DEFAULT_SLEEP_ENTRY_S  # before each entry that needs an extraction
    max_blocks: int = DEFAULT_MAX_BLOCKS  # consecutive blocked answers that stop the run
    jobs: int = DEFAULT_JOBS
    limit: int | None = None  # at most this many videos from each SOURCE
    tabs: tuple[str, ...] = DEFAULT_TABS  # channel tabs to take
    cookies: Path | None = None  # Netscape cookies.txt passed to yt-dlp
    cookies_from_browser: tuple | None = None  # yt-dlp's (browser, profile, keyring, container)
    subtitle_langs: tuple[str, ...] = ()  # subtitle languages to save (LANG also takes LANG-*)
    auto_subs: bool = False  # also accept automatic captions for those languages
    retries: int = DEFAULT_RETRIES
    js_runtimes: tuple[tuple[str, str | None], ...] = ()  # extra JavaScript runtimes (name, path)
    remote_components: tuple[str, ...] = ()  # yt-dlp remote components allowed (ejs:github, ...)

    @property
    def has_cookies(self) -> bool:
        return self.cookies is not None or self.cookies_from_browser is not None
