"""What the workspace already holds, for dedupe before any network request.

Built from the journal's DONE lines (each carries the extractor and the
original id) and the source records (their audio sha256). Answers: is this
extractor + id finished? is this audio a re-upload of a source we have? which
``source_id`` may a new source take without colliding?
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from whcore.journal import Journal
from whcore.records import SourceRecord, sanitize_id

SHORT_HASH_CHARS = 8  # suffix that keeps colliding ids apart


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:SHORT_HASH_CHARS]


@dataclass
class Catalog:
    """Finished sources by key, by id and by audio hash; safe to share between threads."""

    by_key: dict[tuple[str, str], str] = field(default_factory=dict)  # (extractor, id) -> source_id
    key_of: dict[str, tuple[str, str]] = field(default_factory=dict)  # source_id -> (extractor, id)
    by_sha256: dict[str, str] = field(default_factory=dict)  # audio sha256 -> source_id
    claimed: set[tuple[str, str]] = field(default_factory=set)  # keys in flight this run
    extra_of: dict[str, dict] = field(default_factory=dict)  # source_id -> its DONE line's extra facts
    lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def build(cls, journal: Journal, records: list[SourceRecord]) -> "Catalog":
        catalog = cls()
        for unit, entry in journal.source_entries().items():
            extractor, original = entry.extra.get("extractor"), entry.extra.get("id")
            if extractor and original is not None:
                catalog._add(unit, (extractor, str(original)), "")
                catalog.extra_of[unit] = dict(entry.extra)
        for record in records:
            if record.source_id in catalog.key_of and record.sha256:
                catalog.by_sha256[record.sha256] = record.source_id
        return catalog

    def _add(self, source_id: str, key: tuple[str, str], sha256: str) -> None:
        self.by_key[key] = source_id
        self.key_of[source_id] = key
        if sha256:
            self.by_sha256[sha256] = source_id

    def add(self, record: SourceRecord, key: tuple[str, str], extra: dict | None = None) -> None:
        with self.lock:
            self._add(record.source_id, key, record.sha256)
            self.extra_of[record.source_id] = dict(extra or {})

    def source_id_of(self, key: tuple[str, str]) -> str | None:
        return self.by_key.get(key)

    def duplicate_of(self, sha256: str) -> str | None:
        return self.by_sha256.get(sha256)

    def claim(self, key: tuple[str, str]) -> bool:
        """Reserve ``key`` for this run; False if another entry already has it."""
        with self.lock:
            if key in self.claimed:
                return False
            self.claimed.add(key)
            return True

    def allocate_id(self, key: tuple[str, str], readable: str, suffix: str) -> str:
        """The id for ``key``: its known id, else ``readable`` sanitised, else + ``_suffix``.

        ``suffix`` (a short content or key hash) is added only when the plain
        id already belongs to another source, so ids stay readable.
        """
        with self.lock:
            known = self.by_key.get(key)
            if known is not None:
                return known
            candidate = sanitize_id(readable)
            owner = self.key_of.get(candidate)
            if owner is not None and owner != key:
                candidate = f"{sanitize_id(readable)[:50]}_{suffix}"
            self.key_of[candidate] = key  # reserve it against other threads
            return candidate
