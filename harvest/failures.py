"""What a failed request means, read from the site's own words.

yt-dlp reports every refusal as an exception whose text is the site's reason.
harvest acts on four kinds differently:

* ``BLOCKED``: the site is rate-limiting this client (HTTP 429, YouTube's bot
  check "Sign in to confirm you're not a bot", "try again later"). Going on only
  prolongs the block, so consecutive blocks trip the circuit breaker.
* ``UNAVAILABLE``: the entry itself cannot be had (private, removed,
  members-only, age-gated without cookies). Remembered, not retried.
* ``NOT_YET``: live now, upcoming, a premiere: retried on a later run, not stored.
* ``OTHER``: anything else (network, 404 media, corrupt data): a plain failure,
  retried on the next run.
"""

from __future__ import annotations

import re
from enum import Enum

from yt_dlp.networking.exceptions import HTTPError


class FailureKind(str, Enum):
    BLOCKED = "blocked"
    UNAVAILABLE = "unavailable"
    NOT_YET = "not yet"
    OTHER = "other"


_BLOCKED = re.compile(
    r"HTTP Error 429|Too Many Requests|confirm you[’']?re not a bot|try again later"
    r"|rate-limited|captcha", re.IGNORECASE)
_NOT_YET = re.compile(
    r"Premieres in|This live event will begin|live event will begin|is_upcoming|Premiere will begin"
    r"|waiting for scheduled stream", re.IGNORECASE)
_UNAVAILABLE = re.compile(
    r"Private video|video is private|has been removed|removed by the uploader|Video unavailable"
    r"|This video is unavailable|no longer available|account associated with this video has been terminated"
    r"|members[- ]only|available to this channel'?s members|Join this channel to get access"
    r"|confirm your age|age-restricted|inappropriate for some users|requires payment"
    r"|This video is not available", re.IGNORECASE)


def failure_kind(error: BaseException | str) -> FailureKind:
    """Classify a yt-dlp error (or its text); the bot check wins over "Sign in" wording."""
    if isinstance(error, HTTPError) and error.status == 429:
        return FailureKind.BLOCKED
    text = str(error)
    if _BLOCKED.search(text):
        return FailureKind.BLOCKED
    if _NOT_YET.search(text):
        return FailureKind.NOT_YET
    if _UNAVAILABLE.search(text):
        return FailureKind.UNAVAILABLE
    return FailureKind.OTHER
