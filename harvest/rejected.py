"""The store of entries harvest decided not to take, so reruns never extract them again.

yt-dlp's download archive only lists downloaded entries; a rejected id would
be fully extracted again on every run (one more request per video to a site
that rate-limits). ``sources/rejected.jsonl`` remembers them, keyed by
extractor + id, rewritten atomically on every change.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field

from whcore.atomic import read_jsonl, write_jsonl
from whcore.workspace import Workspace

REJECTED_NAME = "rejected.jsonl"
REASON_LICENSE = "license"  # not Creative Commons
REASON_DUPLICATE = "duplicate"  # same audio bytes as an existing source


@dataclass(frozen=True)
class Rejection:
    """One entry not taken, and why."""

    extractor: str
    id: str
    reason: str  # REASON_LICENSE or REASON_DUPLICATE
    url: str = ""
    title: str = ""
    license: str = ""
    duplicate_of: str = ""  # source_id with the same audio, for duplicates
    sha256: str = ""


@dataclass
class RejectedStore:
    """Rejections of a workspace, loaded once and saved after each change."""

    workspace: Workspace
    _items: dict[tuple[str, str], Rejection] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def path(self):
        return self.workspace.sources_dir / REJECTED_NAME

    @classmethod
    def load(cls, workspace: Workspace) -> "RejectedStore":
        store = cls(workspace)
        if store.path.exists():
            for row in read_jsonl(store.path):
                item = Rejection(**{k: v for k, v in row.items() if k in Rejection.__dataclass_fields__})
                store._items[(item.extractor, item.id)] = item
        return store

    def get(self, extractor: str, video_id: str) -> Rejection | None:
        return self._items.get((extractor, video_id))

    def add(self, item: Rejection) -> None:
        with self._lock:
            self._items[(item.extractor, item.id)] = item
            self._save()

    def discard(self, extractor: str, video_id: str) -> None:
        with self._lock:
            if self._items.pop((extractor, video_id), None) is not None:
                self._save()

    def _save(self) -> None:
        rows = [dataclasses.asdict(item) for _, item in sorted(self._items.items())]
        write_jsonl(self.path, rows)
