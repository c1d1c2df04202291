"""Being a polite client: pauses between entries and a circuit breaker on blocks.

yt-dlp's ``sleep_interval`` only delays media downloads; listing a channel and
fully extracting each of its (mostly non-CC) videos would otherwise run back to
back. harvest adds yt-dlp's request sleep (``sleep_interval_requests``, the
0.75 s of yt-dlp's own ``-t sleep`` preset) and a pause before each entry it
has to extract. When the site answers with a block several times in a row, the
run stops: every further request would extend the block (YouTube's lasts up to
an hour), and a rerun resumes exactly where this one stopped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

DEFAULT_SLEEP_REQUESTS_S = 0.75  # between extractor requests (yt-dlp's `-t sleep` preset)
DEFAULT_SLEEP_ENTRY_S = 1.0  # before each entry that needs a full extraction
DEFAULT_MAX_BLOCKS = 3  # consecutive blocked answers that stop the run
BLOCK_COOL_DOWN = timedelta(hours=1)  # how long YouTube's rate limit usually lasts


@dataclass
class CircuitBreaker:
    """Counts consecutive blocked answers across worker threads; trips at ``threshold``."""

    threshold: int = DEFAULT_MAX_BLOCKS
    tripped: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    tripped_at: datetime | None = None
    _streak: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def blocked(self, reason: str) -> bool:
        """Record one blocked answer; True if this one tripped the breaker."""
        with self._lock:
            self._streak += 1
            if self._streak >= self.threshold and not self.tripped.is_set():
                self.reason = reason
                self.tripped_at = datetime.now(timezone.utc)
                self.tripped.set()
                return True
            return False

    def answered(self) -> None:
        """Any answer that was not a block resets the streak."""
        with self._lock:
            self._streak = 0

    def message(self) -> str:
        """The one line a tripped breaker leaves in the log and on the console."""
        retry_at = (self.tripped_at or datetime.now(timezone.utc)) + BLOCK_COOL_DOWN
        return (f"stopped: the site blocked {self.threshold} requests in a row ({self.reason}); "
                f"finished work is kept, rerun the same command after {retry_at:%H:%M} UTC "
                "(about an hour) to resume, with a larger --sleep-entry or --cookies if it keeps happening")
