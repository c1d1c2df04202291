"""Atomic file output: temp file in the same folder, flush, fsync, rename.

A SIGKILL at any moment leaves either the old file or the new one, never half
a file. Temp names start with ``.tmp-`` so readers and resumes ignore them and
``sweep_temp_files`` can remove leftovers of a killed run.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterable, Iterator

TEMP_PREFIX = ".tmp-"


def temp_path_for(path: Path) -> Path:
    """The temp name used while ``path`` is being written (same folder, same device)."""
    return path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{path.name}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it is fsynced and renamed onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
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
    """Remove temp files a killed run left under ``folder``; returns how many."""
    if not folder.exists():
        return 0
    count = 0
    for leftover in folder.rglob(f"{TEMP_PREFIX}*"):
        if leftover.is_file():
            leftover.unlink()
            count += 1
    return count
