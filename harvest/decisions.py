"""Entries harvest decided not to take, remembered so reruns never extract them again.

yt-dlp's download archive lists only downloaded entries; without a store of its
own, every rerun would fully extract each refused video again (one more request
per video to a site that rate-limits). Two stores, one JSON line per decision:

* ``sources/rejected.jsonl``: licence refused, or the same audio as a source we
  have (a re-upload). ``--recheck-rejected`` retries licence refusals.
* ``sources/unavailable.jsonl``: private, removed, members-only or age-gated
  entries, with the site's reason. ``--recheck-unavailable`` retries them.

Both are append-only: a decision is one appended, fsynced line (a 10,000-video
channel costs 10,000 small appends, not 10,000 rewrites of a growing file). The
last line per key wins; a ``cleared`` line withdraws a decision (the entry was
taken after all). A line torn by a kill does not parse and is ignored.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from whcore.workspace import Workspace

REJECTED_NAME = "rejected.jsonl"
UNAVAILABLE_NAME = "unavailable.jsonl"
REASON_LICENSE = "license"  # licence not accepted
REASON_DUPLICATE = "duplicate"  # same audio bytes as an existing source
CLEARED = "cleared"  # marker field of a line that withdraws the key's decision


@dataclass(frozen=True)
class Rejection:
    """One entry not taken on purpose, and why."""

    extractor: str
    id: str
    reason: str  # REASON_LICENSE or REASON_DUPLICATE
    url: str = ""
    title: str = ""
    license: str = ""
    duplicate_of: str = ""  # source_id with the same audio, for duplicates
    sha256: str = ""


@dataclass(frozen=True)
class Unavailable:
    """One entry the site would not give us (private, removed, members-only, age-gated)."""

    extractor: str
    id: str
    reason: str  # the site's own words, one line
    url: str = ""
    needs_login: bool = False  # members-only or age-gated: retried once cookies are given


Decision = TypeVar("Decision", Rejection, Unavailable)


@dataclass
class DecisionStore(Generic[Decision]):
    """An append-only JSONL store of decisions keyed by (extractor, id); thread-safe."""

    path: Path
    kind: type
    _items: dict[tuple[str, str], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, path: Path, kind: type) -> "DecisionStore":
        store = cls(path, kind)
        if path.is_file():
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    store._apply(line)
        return store

    def _apply(self, line: str) -> None:
        try:
            row = json.loads(line)
            key = (str(row["extractor"]), str(row["id"]))
        except (ValueError, KeyError, TypeError):
            return  # torn by a kill, or not ours
        if row.get(CLEARED):
            self._items.pop(key, None)
            return
        names = {f.name for f in dataclasses.fields(self.kind)}
        try:
            self._items[key] = self.kind(**{k: v for k, v in row.items() if k in names})
        except TypeError:
            return

    def get(self, extractor: str, video_id: str) -> Any | None:
        return self._items.get((extractor, video_id))

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: Decision) -> None:
        with self._lock:
            self._items[(item.extractor, item.id)] = item
            self._append(dataclasses.asdict(item))

    def clear(self, extractor: str, video_id: str) -> None:
        """Withdraw the decision on this key (appends a ``cleared`` line if there was one)."""
        with self._lock:
            if self._items.pop((extractor, video_id), None) is not None:
                self._append({"extractor": extractor, "id": video_id, CLEARED: True})

    def _append(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            if handle.tell() > 0 and not self._ends_with_newline():
                handle.write("\n")  # a torn last line stays its own (unparsable) line
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"


def load_rejected(workspace: Workspace) -> DecisionStore:
    return DecisionStore.load(workspace.sources_dir / REJECTED_NAME, Rejection)


def load_unavailable(workspace: Workspace) -> DecisionStore:
    return DecisionStore.load(workspace.sources_dir / UNAVAILABLE_NAME, Unavailable)
