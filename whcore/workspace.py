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
import os
from dataclasses import dataclass
from pathlib import Path

from whcore import lock
from whcore.errors import SourceError, UserError


class OutsideWorkspaceError(SourceError, ValueError):
    """A path that should lie inside the workspace does not (a ValueError, as ``relative_to`` raises)."""


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
        return self.root.joinpath("windows", source_id)

    def windows_manifest_path(self, source_id: str) -> Path:
        # one joinpath, not three "/": a rerun asks for 100k of these (0.4 s saved per 100k)
        return self.root.joinpath("windows", source_id, "windows.jsonl")

    def windows_manifest_name(self, source_id: str) -> str:
        """``windows_manifest_path`` as a plain string: a rerun's check over 100k sources spent
        more on building ``Path`` objects than on the ``stat`` calls it made with them."""
        return f"{self.root}/windows/{source_id}/windows.jsonl"

    def labels_path(self, source_id: str) -> Path:
        return self.labels_dir / f"{source_id}.jsonl"

    @property
    def layout_dirs(self) -> tuple[Path, ...]:
        """The folders a user may replace by symlinks to another disk (deepest first)."""
        return (self.audio_dir, self.sources_dir / "subs", self.sources_dir, self.windows_dir,
                self.labels_dir, self.dataset_dir, self.model_dir, self.checkpoints_dir, self.logs_dir)

    def relative(self, path: Path) -> str:
        """``path`` relative to the workspace root, as stored in records and the journal.

        Symlinked layout folders (``sources/audio`` on another disk) keep their
        workspace names: the path is first taken as written, and only a path
        already resolved through such a link is mapped back to the link's name.
        """
        lexical = Path(os.path.abspath(path))
        if lexical.is_relative_to(self.root):
            return lexical.relative_to(self.root).as_posix()
        real = Path(path).resolve()
        for folder in self.layout_dirs:
            target = folder.resolve()
            if real.is_relative_to(target):
                return (folder.relative_to(self.root) / real.relative_to(target)).as_posix()
        raise OutsideWorkspaceError(f"{path} is outside workspace {self.root}: keep outputs under the "
                                    "workspace")

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    def resolve_record_path(self, relative: str, what: str = "record path") -> Path:
        """The file a record's relative path names, refused unless it lies inside the workspace.

        A record is input like any other: a crafted ``../../home/me/.ssh/id_rsa`` or an
        absolute path must never be read, linked or copied. Allowed: a path that stays
        under the root as written and whose real location is under the root or under
        the real location of a (possibly symlinked) layout folder.
        """
        text = str(relative)
        candidate = Path(os.path.normpath(text)) if text else Path("..")
        if not text or candidate.is_absolute() or candidate.parts[:1] == ("..",) or "\0" in text:
            raise SourceError(f"{what} {text!r} points outside workspace {self.root}: the record is "
                              "damaged or crafted; rerun the stage that wrote it")
        path = self.root / candidate
        real = path.resolve()
        allowed = (self.root.resolve(), *(folder.resolve() for folder in self.layout_dirs))
        if not any(real.is_relative_to(root) for root in allowed):
            raise SourceError(f"{what} {text!r} resolves to {real}, outside workspace {self.root}: "
                              "the record is damaged or crafted; rerun the stage that wrote it")
        return path


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


def require_sources(workspace: Workspace) -> list[str]:
    """File names of the workspace's source records (``<id>.json``), sorted; a clear error if
    harvest never ran there. Names, not paths: listing 100k records as ``Path`` objects
    (glob, then sorting them) took over a second."""
    try:
        with os.scandir(workspace.sources_dir) as entries:
            names = sorted(entry.name for entry in entries
                           if entry.name.endswith(".json") and not entry.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        names = []
    if not names:
        raise UserError(f"workspace {workspace.root} has no harvested sources: run "
                        f"`python -m harvest SOURCE --workspace {workspace.root}` first")
    return names


def workspace_lock(workspace: Workspace, stage: str,
                   member: tuple[int, int] | None = None) -> contextlib.AbstractContextManager[None]:
    """Hold ``workspace`` for one stage run (see ``whcore.lock.workspace_lock``)."""
    return lock.workspace_lock(workspace.root, stage, member)
