"""Listing a SOURCE into video entries, lazily, as the site pages them.

A playlist, channel tab or search extracts (``process=False``) to a result
whose ``entries`` are lazy: each continuation page is requested while they are
iterated, and a failure there (HTTP 429, "Incomplete data") is raised out of
the loop. So entries are handed to the workers one by one as they are listed:
whatever was listed before an error is still harvested, and the error becomes
one line, ``listing of SOURCE stopped after N entries: <reason>``.

A YouTube channel root (``/@handle``, ``/channel/UC...``) extracts to a
playlist whose entries are the channel's tab playlists (Videos, Live, Shorts);
all of them carry the channel's id and the same extractor key, so they are
told apart by their URL's last path segment and flattened here, keeping the
tabs ``--tabs`` names. ``--limit N`` counts videos across the whole SOURCE.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

from yt_dlp.utils import PagedList

MAX_NESTING = 3  # channel -> tab -> playlist -> video; deeper is a loop or a trap
PAGE_ENTRIES = 50  # entries asked of a paged list at a time (it fetches only the pages needed)
# A YouTube channel's tab names, as the last segment of the tab's URL.
KNOWN_TABS = frozenset({"videos", "streams", "shorts", "live", "releases", "podcasts", "playlists",
                        "courses", "community", "featured", "membership", "store", "search"})


@dataclass
class SourceBudget:
    """How many more videos one SOURCE may hand out (``--limit``); shared by the lister and workers."""

    limit: int | None
    taken: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> bool:
        with self._lock:
            if self.limit is not None and self.taken >= self.limit:
                return False
            self.taken += 1
            return True

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.taken >= self.limit


def iter_entries(info: dict[str, Any]) -> Iterator[Any]:
    """A playlist result's raw entries, fetching pages only as they are reached."""
    entries = info.get("entries") or []
    if isinstance(entries, PagedList):
        start = 0
        while page := entries.getslice(start, start + PAGE_ENTRIES):
            yield from page
            start += len(page)
        return
    yield from entries


def tab_name(entry: dict[str, Any]) -> str | None:
    """The channel tab an entry stands for (``videos``, ``streams``, ...), or None if it is no tab."""
    url = entry.get("webpage_url") or entry.get("url") or ""
    if not isinstance(url, str) or not url:
        return None
    last = urlparse(url).path.rstrip("/").rsplit("/", 1)[-1].lower()
    return last if last in KNOWN_TABS else None


def tab_selected(entry: dict[str, Any], tabs: tuple[str, ...]) -> bool:
    """False for a channel tab the user did not ask for; True for every other entry."""
    if entry.get("_type") not in ("playlist", "url", "url_transparent"):
        return True
    name = tab_name(entry)
    if name is None:
        return True
    if name == "live":
        name = "streams"
    return name in tabs


@dataclass
class Lister:
    """Walks one SOURCE's listing and hands each video entry to ``submit``."""

    tabs: tuple[str, ...]
    budget: SourceBudget
    expand_here: Callable[[dict[str, Any]], dict[str, Any] | None]  # a playlist reference -> its result
    submit: Callable[[Any], None]  # one raw video entry
    stopping: Callable[[], bool]
    listed: int = 0

    def walk(self, info: dict[str, Any], depth: int = 0) -> None:
        """List ``info``'s entries depth first; raises what a lazy page raises."""
        if depth > MAX_NESTING:
            raise ValueError(f"playlists nested deeper than {MAX_NESTING} levels")
        for entry in iter_entries(info):
            if self.stopping() or self.budget.exhausted:
                return
            if not isinstance(entry, dict) or not tab_selected(entry, self.tabs):
                continue
            if entry.get("_type") in ("playlist", "multi_video"):
                self.walk(entry, depth + 1)
                continue
            nested = self.expand_here(entry)
            if nested is not None:
                self.walk(nested, depth + 1)
                continue
            if not self.budget.take():
                return
            self.listed += 1
            self.submit(entry)
