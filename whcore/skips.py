"""Per-unit "already done" lines that stay readable at 100k units.

A rerun over 100k finished sources wrote one INFO line per source: 8–11 MB of log
per rerun, and formatting, locking and echoing them was most of the rerun's time.
The first ``SHOWN_PER_RUN`` are still logged one by one (what a small workspace's
user reads), the rest as one count at the end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

SHOWN_PER_RUN = 20  # skip lines logged one by one per run; the rest are counted


class SkipLines:
    """The "already done" lines of one run (thread-safe: segment skips from its worker threads)."""

    def __init__(self, log: Any, what: str, shown: int = SHOWN_PER_RUN) -> None:
        self.log = log
        self.what = what  # e.g. "already labelled with these options"
        self.shown = shown
        self.count = 0
        self._lock = threading.Lock()

    def line(self, message: str) -> None:
        """Count one skipped unit; log ``message`` if it is among the first ``shown``."""
        self.lines((message,), str)

    def lines(self, items: Sequence[T], message: Callable[[T], str]) -> None:
        """``line`` for each of ``items`` at once (``message(item)`` made only for those shown): one
        call for a rerun's 100k skipped sources instead of 100k."""
        with self._lock:
            first = self.count
            self.count += len(items)
        for item in items[:max(0, self.shown - first)]:
            self.log.info(message(item))

    def close(self) -> None:
        """Log how many skips were not listed, if any."""
        hidden = self.count - self.shown
        if hidden > 0:
            self.log.info(f"... and {hidden} more sources {self.what} (not listed one by one; "
                          f"{self.count} skipped in all)")
