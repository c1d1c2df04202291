"""The run journal behind ``logs/log.txt``.

Every event goes to ``log.txt`` as one human-readable loguru line. A finished
unit of work (a downloaded source, a segmented source, ...) is one ``DONE``
line, written and fsynced only after the unit's outputs are in place::

    2026-11-21 22:16:18.123 | DONE    | segment  | lecture {"params": "…", "files": {…}}

A rerun parses the DONE lines of its stage and skips a unit only if its
params digest matches and every file it listed still exists with the same
size (and sha256, for files recorded with one). A line cut short by a SIGKILL
does not parse and so does not count.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, TextIO

from loguru import logger

from whcore.workspace import Workspace

DONE_LEVEL = "DONE"
DONE_LEVEL_NO = 25  # between INFO (20) and WARNING (30)
FILE_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {extra[stage]: <8} | {message}"
CONSOLE_FORMAT = "<level>{level: <7}</level> | {extra[stage]} | {message}"
HASH_CHUNK_BYTES = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (bounded memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def params_digest(params: dict[str, Any]) -> str:
    """Short stable digest of the options that shape a unit's output."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class DoneEntry:
    """One finished unit as recorded in the journal."""

    stage: str
    unit: str
    params: str  # params_digest of the options used
    files: dict[str, list] = field(default_factory=dict)  # relpath -> [size_bytes, sha256 | None]
    extra: dict[str, Any] = field(default_factory=dict)  # stage-specific facts (counts, ...)


class _JournalSink:
    """Loguru sink appending to log.txt; fsyncs DONE lines so they survive a crash."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: TextIO = open(path, "a", encoding="utf-8")

    def write(self, message: Any) -> None:
        self._handle.write(str(message))
        self._handle.flush()
        if message.record["level"].name == DONE_LEVEL:
            os.fsync(self._handle.fileno())

    def stop(self) -> None:
        self._handle.close()


def _one_line(record: dict) -> None:
    record["message"] = record["message"].replace("\r", " ").replace("\n", " ⏎ ")


def _console_format(record: dict) -> str:
    """Console lines; a DONE line shows only its unit (its file list can be 300 KB)."""
    if record["level"].name == DONE_LEVEL:
        return "<level>{level: <7}</level> | {extra[stage]} | done {extra[unit]}\n"
    return CONSOLE_FORMAT + "\n"


def _console_write(message: str) -> None:
    """Print through tqdm so log lines do not tear progress bars."""
    try:
        from tqdm import tqdm

        tqdm.write(str(message), end="", file=sys.stderr)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        sys.stderr.write(str(message))


def setup_logging(workspace: Workspace, stage: str, verbose: bool = False) -> Any:
    """Route loguru to ``log.txt`` (everything) and stderr (INFO+); return a stage logger."""
    try:
        logger.level(DONE_LEVEL)
    except ValueError:
        logger.level(DONE_LEVEL, no=DONE_LEVEL_NO, color="<green><bold>")
    logger.remove()
    logger.configure(patcher=_one_line, extra={"stage": stage})
    sink = _JournalSink(workspace.log_path)
    logger.add(sink, format=FILE_FORMAT, level="DEBUG", colorize=False, catch=False)
    logger.add(_console_write, format=_console_format, level="DEBUG" if verbose else "INFO",
               colorize=sys.stderr.isatty())
    return logger.bind(stage=stage)


class Journal:
    """Read and write a stage's DONE lines in the workspace journal."""

    def __init__(self, workspace: Workspace, stage: str) -> None:
        self.workspace = workspace
        self.stage = stage
        self._entries = self._read_entries()

    def _read_entries(self) -> dict[str, DoneEntry]:
        entries: dict[str, DoneEntry] = {}
        if not self.workspace.log_path.exists():
            return entries
        with open(self.workspace.log_path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                entry = parse_done_line(line)
                if entry is not None and entry.stage == self.stage:
                    entries[entry.unit] = entry
        return entries

    def entries(self) -> dict[str, DoneEntry]:
        """Latest DONE entry per unit (valid or not)."""
        return dict(self._entries)

    def is_done(self, unit: str, params: str) -> bool:
        """True if ``unit`` finished with these params and its outputs are intact."""
        entry = self._entries.get(unit)
        return entry is not None and entry.params == params and self._files_intact(entry)

    def _files_intact(self, entry: DoneEntry) -> bool:
        for relative, (size, sha256) in entry.files.items():
            path = self.workspace.absolute(relative)
            if not path.is_file() or path.stat().st_size != size:
                return False
            if sha256 is not None and file_sha256(path) != sha256:
                return False
        return True

    def mark_done(self, unit: str, params: str, files: Iterable[Path] = (),
                  hashed: Iterable[Path] = (), extra: dict[str, Any] | None = None) -> DoneEntry:
        """Record ``unit`` as finished. Call only after its outputs are renamed into place.

        ``files`` are checked by size on resume; ``hashed`` also by sha256
        (use it for small manifests whose content matters).
        """
        listing: dict[str, list] = {}
        for path in files:
            listing[self.workspace.relative(path)] = [Path(path).stat().st_size, None]
        for path in hashed:
            listing[self.workspace.relative(path)] = [Path(path).stat().st_size, file_sha256(path)]
        entry = DoneEntry(self.stage, unit, params, listing, extra or {})
        payload = json.dumps({"params": params, "files": listing, "extra": entry.extra},
                             ensure_ascii=False, sort_keys=True)
        logger.bind(stage=self.stage, unit=unit).log(DONE_LEVEL, f"{unit} {payload}")
        self._entries[unit] = entry
        return entry


def parse_done_line(line: str) -> DoneEntry | None:
    """Parse one journal line; None for ordinary events and for torn lines."""
    parts = line.rstrip("\n").split(" | ", 3)
    if len(parts) != 4 or parts[1].strip() != DONE_LEVEL:
        return None
    unit, _, payload = parts[3].partition(" ")
    try:
        data = json.loads(payload)
        return DoneEntry(parts[2].strip(), unit, data["params"], data["files"], data.get("extra", {}))
    except (ValueError, KeyError, TypeError):
        return None
