"""The user cache where assembled and converted models live.

Models are built once (assembled from wheels, converted between formats) and
reused by every workspace, so they live outside the workspace, in
``$WHISPER_HARVEST_CACHE`` or ``~/.cache/whisper-harvest``. A model folder is
written under a temp name and renamed into place, so a SIGKILL leaves either no
model or a whole one; a file lock keeps two processes from building the same
model at once (the second waits, then finds it done).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path
from typing import Iterator

CACHE_ENV = "WHISPER_HARVEST_CACHE"
TEMP_DIR_PREFIX = ".tmp-"


def cache_dir() -> Path:
    """The model cache root: ``$WHISPER_HARVEST_CACHE`` or ``~/.cache/whisper-harvest``."""
    configured = os.environ.get(CACHE_ENV)
    root = Path(configured).expanduser() if configured else Path.home() / ".cache" / "whisper-harvest"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def build_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock named after ``target`` while it is built (blocks until free)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.with_name(f".{target.name}.lock")
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temp folder beside ``target``; on success it is renamed onto ``target``.

    An existing ``target`` is replaced. Leftover temp folders of killed runs are
    removed first, so they never pile up in the cache.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f"{TEMP_DIR_PREFIX}*-{target.name}"):
        _remove_if_stale(leftover)
    tmp = target.with_name(f"{TEMP_DIR_PREFIX}{os.getpid()}-{target.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_if_stale(folder: Path) -> None:
    """Remove a temp folder whose writer process is gone (its pid is in the name)."""
    try:
        pid = int(folder.name[len(TEMP_DIR_PREFIX):].split("-", 1)[0])
    except ValueError:
        return
    if pid == os.getpid() or not _process_alive(pid):
        shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_tree(folder: Path) -> None:
    """Flush every file of ``folder`` to disk before it is renamed into place."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
