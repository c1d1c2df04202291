"""The one lock helper: ``flock`` on a file, released by the kernel when its holder dies.

Every lock in the project goes through ``hold``: the workspace lock of a stage run,
the build lock of a model in the cache, the per-shard locks of sharded label and
the per-rank locks of a multi-process finetune. ``flock`` rather than a lock file
that is created and deleted: a SIGKILLed holder can never leave a stale lock, so
no run ever has to guess whether a lock is abandoned.

Shards of one label run, and the ranks of one ``accelerate launch``, must share the
workspace against other stages yet exclude each other: they hold the workspace
lock *shared* and a per-member lock *exclusive*. A plain stage run holds the
workspace lock exclusive, so it excludes every member and every member excludes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from whcore.errors import UserError

WORKSPACE_LOCK_NAME = ".lock"  # in <workspace>/logs/
MEMBERS_PREFIX = ".lock-members-"  # held shared by every process of a multi-process run of one stage


class BusyError(UserError):
    """The lock is held by another live process (and the caller asked not to wait)."""


@contextlib.contextmanager
def hold(path: Path, shared: bool = False, wait: bool = False, holder: str = "") -> Iterator[None]:
    """Hold an ``flock`` on ``path`` for the life of the block.

    ``shared`` takes a shared lock (many holders, no exclusive one); ``wait`` blocks
    until the lock is free instead of raising ``BusyError``. ``holder`` (who holds
    it, e.g. "segment run, pid 12") is written into an exclusively held lock file
    so a refused run can say who is in the way.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
    try:
        fcntl.flock(handle.fileno(), mode)
    except BlockingIOError:
        handle.seek(0)
        current = handle.read().strip() or "another process"
        handle.close()
        raise BusyError(f"{path} is locked by {current}") from None
    try:
        if holder and not shared:
            _write_holder(handle, holder)
        yield
    finally:
        if holder and not shared:
            _write_holder(handle, "")
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


@contextlib.contextmanager
def hold_fd(fd: int) -> Iterator[None]:
    """Hold an exclusive ``flock`` on an open file for a moment (waits): one whole append to a shared log."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _write_holder(handle, text: str) -> None:  # noqa: ANN001 - an open text file
    handle.seek(0)
    handle.truncate()
    handle.write(text)
    handle.flush()


@contextlib.contextmanager
def workspace_lock(workspace_root: Path, stage: str, member: tuple[int, int] | None = None) -> Iterator[None]:
    """Hold a workspace for one stage run; a one-line ``UserError`` if it is busy.

    ``member`` = (index, count) for one of ``count`` cooperating processes of the same
    run (label shards, finetune ranks): they share the workspace and exclude only a
    second process with the same index.
    """
    logs = Path(workspace_root) / "logs"
    who = f"{stage} run, pid {os.getpid()}"
    cooperating = member is not None and member[1] > 1
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(hold(logs / WORKSPACE_LOCK_NAME, shared=cooperating, holder=who))
            if cooperating:
                stack.enter_context(hold(logs / f"{MEMBERS_PREFIX}{stage}", shared=True))
                _refuse_other_groups(logs, stage)
                stack.enter_context(hold(logs / f".lock-{stage}-{member[0]}-of-{member[1]}", holder=who))
        except BusyError as error:
            what = f"{stage} {member[0]}/{member[1]} is already running or another stage holds it" \
                if cooperating else "another run holds it"
            raise UserError(f"workspace {workspace_root} is busy: {what} ({error}); wait for that "
                            "run to finish or use another --workspace") from None
        yield


def _refuse_other_groups(logs: Path, stage: str) -> None:
    """BusyError if the members of another stage's multi-process run hold the workspace.

    Each group holds its members lock shared before probing the others exclusively, so
    two groups starting at once both see each other and both refuse: never both run.
    """
    for other in sorted(logs.glob(f"{MEMBERS_PREFIX}*")):
        if other.name == f"{MEMBERS_PREFIX}{stage}":
            continue
        with hold(other):  # raises BusyError while any member of that stage holds it
            pass
