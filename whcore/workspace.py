"""Workspace layout and the single-writer lock.

One folder holds a whole corpus run; every stage finds its inputs and puts
its outputs at the paths named here, so no stage guesses another's layout::

    <workspace>/logs/log.txt            run journal (human log + DONE lines)
    <workspace>/sources/<id>.json       one SourceRecord per harvested source
    <workspace>/sources/audio/<id>.*    downloaded / copied audio
    <workspace>/windows/<id>/           16 kHz mono windows + windows.jsonl
    <workspace>/labels/<id>.jsonl       one LabelRecord per window
    <workspace>/dataset/                Hugging Face audiofolder (train/, test/)
    <workspace>/model/                  fine-tuned model
    <workspace>/checkpoints/            training checkpoints (removed once the model is exported)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from whcore.errors import UserError

LOCK_NAME = ".lock"


@dataclass(frozen=True)
class Workspace:
    """Paths of one corpus workspace (all derived from ``root``)."""

    root: Path

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def log_path(self) -> Path:
        return self.logs_dir / "log.txt"

    @property
    def sources_dir(self) -> Path:
        return self.root / "sources"

    @property
    def audio_dir(self) -> Path:
        return self.sources_dir / "audio"

    @property
    def windows_dir(self) -> Path:
        return self.root / "windows"

    @property
    def labels_dir(self) -> Path:
        return self.root / "labels"

    @property
    def dataset_dir(self) -> Path:
        return self.root / "dataset"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    def source_record_path(self, source_id: str) -> Path:
        return self.sources_dir / f"{source_id}.json"

    def source_windows_dir(self, source_id: str) -> Path:
        return self.windows_dir / source_id

    def windows_manifest_path(self, source_id: str) -> Path:
        return self.source_windows_dir(source_id) / "windows.jsonl"

    def labels_path(self, source_id: str) -> Path:
        return self.labels_dir / f"{source_id}.jsonl"

    def relative(self, path: Path) -> str:
        """``path`` relative to the workspace root, as stored in records and the journal."""
        return Path(path).resolve().relative_to(self.root).as_posix()

    def absolute(self, relative: str) -> Path:
        return self.root / relative


def open_workspace(path: str | Path, create: bool = False) -> Workspace:
    """Resolve ``path`` to a Workspace; ``create`` makes it (harvest), else it must exist."""
    root = Path(path).expanduser().resolve()
    if create:
        root.mkdir(parents=True, exist_ok=True)
    elif not root.is_dir():
        raise UserError(f"workspace {root} does not exist: pass --workspace DIR pointing at a "
                        "folder made by `python -m harvest`")
    workspace = Workspace(root)
    workspace.logs_dir.mkdir(parents=True, exist_ok=True)
    return workspace


def require_sources(workspace: Workspace) -> list[Path]:
    """Source records of the workspace; a clear error if harvest never ran there."""
    records = sorted(workspace.sources_dir.glob("*.json")) if workspace.sources_dir.is_dir() else []
    if not records:
        raise UserError(f"workspace {workspace.root} has no harvested sources: run "
                        f"`python -m harvest SOURCE --workspace {workspace.root}` first")
    return records


@contextlib.contextmanager
def workspace_lock(workspace: Workspace, stage: str) -> Iterator[None]:
    """Hold the workspace's exclusive lock for the life of a stage run.

    ``flock`` is released by the kernel when the process dies, so a SIGKILLed
    run never leaves a stale lock behind.
    """
    lock_path = workspace.logs_dir / LOCK_NAME
    handle = open(lock_path, "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise UserError(f"workspace {workspace.root} is busy ({holder}); wait for that run to "
                        "finish or use another --workspace") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{stage} run, pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.seek(0)
        handle.truncate()
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()
