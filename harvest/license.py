"""The Creative Commons licence gate.

Platforms state licences in many spellings: YouTube says exactly
``Creative Commons Attribution license (reuse allowed)`` (CC BY) in the full
extraction and nothing at all in flat playlist entries; feeds carry
``creativecommons.org`` URLs or short forms like ``CC BY-NC-SA 4.0``. The gate
reduces each string to one licence kind (``by``, ``by-sa``, ``by-nc``,
``by-nc-sa``, ``by-nd``, ``by-nc-nd``, ``cc0``, ``pd``) and accepts the kinds
the user chose: by default CC BY, CC BY-SA, CC0 and public domain, since
NonCommercial and NoDerivatives terms restrict what a trained model may be
used for. A negation ("not Creative Commons"), a contradiction ("All rights
reserved") or an unknown string has no kind and is rejected.

The gate trusts what the platform states. It cannot tell whether an uploader
had the right to put a CC licence on the content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

USER_PROVIDED_LICENSE = "user-provided"  # local files: the user vouches for them
KIND_BY, KIND_BY_SA, KIND_CC0, KIND_PD = "by", "by-sa", "cc0", "pd"
ALL_KINDS = ("by", "by-sa", "by-nc", "by-nc-sa", "by-nd", "by-nc-nd", "cc0", "pd")
DEFAULT_ACCEPTED = frozenset({KIND_BY, KIND_BY_SA, KIND_CC0, KIND_PD})

_CC_URL = re.compile(r"creativecommons\.org/(?:licenses|licences)/(?P<terms>[a-z-]+)", re.IGNORECASE)
_CC_ZERO_URL = re.compile(r"creativecommons\.org/publicdomain/zero/", re.IGNORECASE)
_CC_MARK_URL = re.compile(r"creativecommons\.org/publicdomain/mark/", re.IGNORECASE)
# "not", "non-", "no", ... followed within three words by the licence family's name
_NEGATION = re.compile(r"\b(?:not|non|no|never|without|isn'?t)\b(?:[\s-]+\w+){0,3}?[\s-]+"
                       r"(?:creative[\s-]*commons|cc\b|public\s+domain)"
                       r"|\bnon-?cc\b", re.IGNORECASE)
_ALL_RIGHTS = re.compile(r"all\s+rights\s+reserved|standard\s+youtube\s+licen[cs]e", re.IGNORECASE)
_CC_WORDS = re.compile(r"creative[\s-]*commons|\bcc(?:[\s-]*(?:by|0|zero)\b|0)"
                       r"|\battribution(?:-(?:noncommercial|noderivs|noderivatives|sharealike))*\s+\d\.\d",
                       re.IGNORECASE)  # the last: a CC deed's own title, "Attribution-ShareAlike 4.0"
_ZERO = re.compile(r"\bcc[\s-]*(?:0|zero)\b|\bcc0|public\s+domain\s+dedication", re.IGNORECASE)
_PUBLIC_DOMAIN = re.compile(r"\bpublic[\s-]+domain\b", re.IGNORECASE)
_TERMS = {  # term -> words that state it (long forms of the CC deeds and short codes)
    "nc": re.compile(r"non[\s-]*commercial|\bnc\b", re.IGNORECASE),
    "nd": re.compile(r"no[\s-]*deriv(?:ative)?s?|\bnd\b", re.IGNORECASE),
    "sa": re.compile(r"share[\s-]*alike|\bsa\b", re.IGNORECASE),
    "by": re.compile(r"attribution|\bby\b", re.IGNORECASE),
}


def _kind_from_terms(terms: set[str]) -> str | None:
    """``by`` plus its modifiers as a kind name; ND with SA is no CC licence."""
    if "by" not in terms or {"nd", "sa"} <= terms:
        return None
    parts = ["by"] + [term for term in ("nc", "nd", "sa") if term in terms]
    return "-".join(parts)


def license_kind(text: str | None) -> str | None:
    """The licence kind a platform's licence string states, or None if it states none we know."""
    if not text or not text.strip():
        return None
    if _NEGATION.search(text) or _ALL_RIGHTS.search(text):
        return None
    if _CC_ZERO_URL.search(text):
        return KIND_CC0
    if _CC_MARK_URL.search(text):
        return KIND_PD
    url = _CC_URL.search(text)
    if url is not None:
        return _kind_from_terms(set(url.group("terms").lower().split("-")))
    if _ZERO.search(text):
        return KIND_CC0
    if _CC_WORDS.search(text):
        return _kind_from_terms({term for term, words in _TERMS.items() if words.search(text)})
    if _PUBLIC_DOMAIN.search(text):
        return KIND_PD
    return None


def describe_license(license_text: str | None) -> str:
    """The licence as logged: the platform's words, or a note that it stated none."""
    return license_text if license_text else "none stated"


def parse_accepted(text: str) -> frozenset[str]:
    """The kinds ``--accept-licenses`` names (comma list); ValueError names a bad one."""
    kinds = {part.strip().lower().removeprefix("cc-").removeprefix("cc ") for part in text.split(",")}
    kinds.discard("")
    unknown = sorted(kinds - set(ALL_KINDS))
    if unknown:
        raise ValueError(f"unknown licence kind(s) {', '.join(unknown)}; use {', '.join(ALL_KINDS)}")
    return frozenset(kinds)


@dataclass(frozen=True)
class LicenseGate:
    """Which licence kinds a run accepts."""

    accepted: frozenset[str] = DEFAULT_ACCEPTED

    def accepts(self, license_text: str | None) -> bool:
        kind = license_kind(license_text)
        return kind is not None and kind in self.accepted

    def reason(self, license_text: str | None) -> str:
        """Why a licence is refused, for the log line and the rejected store."""
        kind = license_kind(license_text)
        if kind is None:
            return f"licence {describe_license(license_text)!r} is not a Creative Commons licence we recognise"
        return (f"licence {license_text!r} is CC {kind.upper()}, not accepted "
                f"(--accept-licenses {kind} to take it)")

    def match_filter(self) -> Callable[..., str | None]:
        """A yt-dlp ``match_filter``: None to download, a reason string to skip.

        harvest checks the licence itself before downloading (so it can record
        rejections); this filter is the second lock on the same door, so no code
        path can download a refused entry while the gate is on. Flat entries
        (``incomplete``) carry no licence yet and pass to full extraction.
        """
        def cc_match_filter(info: dict[str, Any], *, incomplete: bool) -> str | None:
            if incomplete or self.accepts(info.get("license")):
                return None
            return self.reason(info.get("license"))

        return cc_match_filter


# Fields YouTube fills only from the watch page's initial data, the same data its
# "License" row comes from (fetched non-fatally): if none is present, that data did
# not load, and a missing licence says nothing about the video.
WATCH_PAGE_FIELDS = ("like_count", "channel_follower_count")


def license_unreadable(info: dict[str, Any]) -> bool:
    """True when the licence is missing because the page data that states it failed to load.

    Only for extractions that report a ``live_status`` (YouTube's player data
    loaded) but none of the watch-page fields: a non-CC YouTube video has those
    fields and simply no licence row. Sites without a watch page (feeds, direct
    links) never count as unreadable, so their missing licence is a rejection.
    """
    if info.get("license"):
        return False
    return "live_status" in info and not any(name in info for name in WATCH_PAGE_FIELDS)
