"""The Creative Commons licence gate.

YouTube states a CC video's licence as exactly
``Creative Commons Attribution license (reuse allowed)`` in the full
extraction; flat playlist entries carry no licence at all, and a missing
licence means "standard YouTube licence", i.e. not CC. The gate therefore lets
incomplete (flat) entries through and decides on the fully extracted one.

The gate trusts what the platform states. It cannot tell whether an uploader
had the right to put a CC licence on the content.
"""

from __future__ import annotations

import re
from typing import Any

USER_PROVIDED_LICENSE = "user-provided"  # local files: the user vouches for them
CC_PATTERN = re.compile(r"creative\s*commons|creativecommons\.org/(licenses|publicdomain)|\bcc[- ]?(by|0)\b",
                        re.IGNORECASE)


def is_cc_licensed(license_text: str | None) -> bool:
    """True if the platform's licence string says Creative Commons (missing -> False)."""
    return bool(license_text) and CC_PATTERN.search(license_text) is not None


def describe_license(license_text: str | None) -> str:
    """The licence as logged: the platform's words, or a note that it stated none."""
    return license_text if license_text else "none stated"


def cc_match_filter(info: dict[str, Any], *, incomplete: bool) -> str | None:
    """yt-dlp ``match_filter``: None to download, a reason string to skip.

    harvest checks the licence itself before downloading (so it can record
    rejections); this filter is the second lock on the same door, so no code
    path can download a non-CC entry while the gate is on.
    """
    if incomplete:
        return None
    if is_cc_licensed(info.get("license")):
        return None
    return f"not Creative Commons (licence: {describe_license(info.get('license'))})"
