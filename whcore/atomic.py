"""Whole-file writes and JSON-lines reads on top of ``whcore.publish``.

A SIGKILL at any moment leaves either the old file or the new one, never half
a file: every write goes through ``publish_file`` (temp file in the same
folder, fsync, rename, fsync of the folder). Temp names start with ``.tmp-<pid>-``
so readers and resumes ignore them and ``sweep_temp_files`` can remove the
leftovers of a killed run without touching those of a live one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from whcore.publish import TEMP_PREFIX, publish_file, sweep_stale, temp_name

atomic_path = publish_file  # the context manager every whole-file write uses
temp_path_for = temp_name  # the temp name ``atomic_path`` writes under

__all__ = ["TEMP_PREFIX", "atomic_path", "read_jsonl", "sweep_temp_files", "temp_path_for",
           "write_bytes", "write_jsonl", "write_text"]


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with publish_file(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Write one JSON object per line, atomically (keys kept in insertion order)."""
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    write_text(path, text)


def read_jsonl(path: Path) -> list[dict]:
    """Read a JSON-lines file written by ``write_jsonl``."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def sweep_temp_files(folder: Path) -> int:
    """Remove temp files and folders that dead writers left under ``folder`` (recursively).

    Temps of live processes (another label shard, a concurrent build) are kept.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    folders = [folder, *(p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink()
                         and not p.name.startswith(TEMP_PREFIX))]
    return sum(sweep_stale(f) for f in folders)
