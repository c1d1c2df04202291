"""Hold back licence-less rejections until the run shows that licences are read at all.

YouTube states a video's licence in one row of the watch page, and yt-dlp has
lost that row before when YouTube changed the page. Then every video, Creative
Commons or not, arrives without a ``license`` field, the gate rejects them all,
and the rejected store would make every later run skip them for good: a crawl
that "succeeds" with zero sources, and stays empty after yt-dlp is fixed.

So a rejection for a *missing* licence on a watch page that loaded is held
in memory, not stored, until some extraction of the same run carries a
licence field (then the field is read, and the held rejections are stored as
usual). If the run ends with at least ``SUSPECT_MIN_EXTRACTIONS`` such
extractions and not one licence among them, nothing is stored, one warning
names the likely cause, and the entries count as failed (exit 1), so the next
run looks at them again. A few licence-less videos in a small run are more
likely plain non-CC videos: below that count they are stored as rejected.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from harvest.decisions import DecisionStore, Rejection
from harvest.license import WATCH_PAGE_FIELDS

SUSPECT_MIN_EXTRACTIONS = 20  # watch pages in one run, all without a licence, before we suspect yt-dlp
NO_LICENSE_FIELD = "no licence field on any watch page of this run (yt-dlp out of date?)"


def shows_watch_page(info: dict[str, Any]) -> bool:
    """An extraction whose watch-page data loaded (YouTube's shape): it would carry the licence row."""
    return "live_status" in info and any(name in info for name in WATCH_PAGE_FIELDS)


@dataclass
class LicenseWatch:
    """Counts the run's watch-page extractions and holds their licence-less rejections."""

    store: DecisionStore  # the rejected store the held rejections go to once licences are seen
    pages: int = 0  # watch-page extractions that reached the licence gate
    licensed: int = 0  # ... of which carried a licence field
    held: list[Rejection] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, info: dict[str, Any]) -> None:
        """Count one extraction at the gate; the first licence field releases the held rejections."""
        if not shows_watch_page(info):
            return
        with self._lock:
            self.pages += 1
            if info.get("license"):
                self.licensed += 1
                self._release()

    def reject(self, rejection: Rejection, info: dict[str, Any]) -> bool:
        """Store ``rejection`` now (True), or hold it while no watch page of this run had a licence (False)."""
        with self._lock:
            if not info.get("license") and shows_watch_page(info) and not self.licensed:
                self.held.append(rejection)
                return False
        self.store.add(rejection)
        return True

    def settle(self) -> set[str] | None:
        """At the end of the run: the ids whose rejections were dropped as suspect, or None.

        None means nothing looked wrong, and any held rejection has now been stored.
        """
        with self._lock:
            if self.licensed == 0 and self.pages >= SUSPECT_MIN_EXTRACTIONS:
                dropped = {rejection.id for rejection in self.held}
                self.held.clear()
                return dropped
            self._release()
            return None

    def warning(self) -> str:
        return (f"none of the {self.pages} videos extracted in this run had a licence field, so nothing was "
                "rejected or stored for them: yt-dlp is probably out of date and no longer reads YouTube's "
                "licence row; run `python -m harvest doctor`, update yt-dlp (pip install -U yt-dlp yt-dlp-ejs), "
                "then rerun the same command")

    def _release(self) -> None:
        for rejection in self.held:
            self.store.add(rejection)
        self.held.clear()
