"""whcore's lock helper, Workspace paths (symlinked folders, record containment) and the exit codes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from whcore import lock
from whcore.cli import EXIT_ITEMS_FAILED, EXIT_OK, exit_code
from whcore.errors import SourceError, UserError
from whcore.workspace import open_workspace, workspace_lock

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from whcore.workspace import Workspace, workspace_lock
    member = tuple(int(x) for x in sys.argv[3].split("/")) if len(sys.argv) > 3 else None
    with workspace_lock(Workspace(Path(sys.argv[1])), sys.argv[2], member):
        print("held", flush=True)
        time.sleep(600)
""")


def hold_in_child(root: Path, stage: str, member: str | None = None) -> subprocess.Popen:
    args = [sys.executable, "-c", HOLDER, str(root), stage] + ([member] if member else [])
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def stop(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()


def test_a_second_run_is_refused_and_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path, create=True)
    child = hold_in_child(workspace.root, "segment")
    with pytest.raises(UserError, match=r"is busy: another run holds it .*segment run, pid"):
        with workspace_lock(workspace, "label"):
            pass
    stop(child)  # SIGKILL: the kernel drops the flock
    with workspace_lock(workspace, "label"):
        pass


def test_shards_share_the_workspace_but_exclude_each_other_and_other_stages(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path, create=True)
    shard0 = hold_in_child(workspace.root, "label", "0/2")
    try:
        with workspace_lock(workspace, "label", (1, 2)):  # the other shard runs beside it
            with pytest.raises(UserError, match="label 1/2 is already running"):
                with workspace_lock(workspace, "label", (1, 2)):
                    pass
        with pytest.raises(UserError, match="label 0/2 is already running"):
            with workspace_lock(workspace, "label", (0, 2)):
                pass
        with pytest.raises(UserError, match="is busy"):  # segment may not swap windows/ under a shard
            with workspace_lock(workspace, "segment"):
                pass
        with pytest.raises(UserError, match="is busy"):  # nor may the ranks of a multi-GPU finetune start
            with workspace_lock(workspace, "finetune", (0, 2)):
                pass
    finally:
        stop(shard0)
    segment = hold_in_child(workspace.root, "segment")
    try:
        with pytest.raises(UserError, match="is busy"):  # and no shard or rank starts under a segment run
            with workspace_lock(workspace, "finetune", (1, 2)):
                pass
    finally:
        stop(segment)


def test_build_lock_waits_for_the_holder(tmp_path: Path) -> None:
    target = tmp_path / "model"
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from whcore.model_cache import build_lock
        with build_lock(Path({str(target)!r})):
            print("held", flush=True)
            time.sleep(1.5)
    """)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    from whcore.model_cache import build_lock

    with build_lock(target):
        waited = time.monotonic() - started
    child.wait()
    assert waited >= 1.0
    with pytest.raises(lock.BusyError):
        with lock.hold(tmp_path / "x.lock"):
            with lock.hold(tmp_path / "x.lock"):  # flock is per open file: a second open conflicts
                pass


def test_relative_keeps_workspace_names_through_symlinked_folders(tmp_path: Path) -> None:
    elsewhere = tmp_path / "big-disk" / "audio"
    elsewhere.mkdir(parents=True)
    workspace = open_workspace(tmp_path / "ws", create=True)
    workspace.sources_dir.mkdir()
    workspace.audio_dir.symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "a.opus").write_bytes(b"x")
    assert workspace.relative(workspace.audio_dir / "a.opus") == "sources/audio/a.opus"
    assert workspace.relative(elsewhere / "a.opus") == "sources/audio/a.opus"  # already resolved
    assert workspace.resolve_record_path("sources/audio/a.opus") == workspace.audio_dir / "a.opus"
    with pytest.raises(SourceError, match="outside workspace"):
        workspace.relative(tmp_path / "other.txt")
    with pytest.raises(ValueError):  # callers that test containment with ValueError keep working
        workspace.relative(tmp_path / "other.txt")


@pytest.mark.parametrize("path", ["../secret.txt", "/etc/passwd", "sources/../../secret.txt", "",
                                  "windows/escape/secret.txt"])
def test_record_paths_outside_the_workspace_are_refused(tmp_path: Path, path: str) -> None:
    (tmp_path / "secret.txt").write_text("private")
    workspace = open_workspace(tmp_path / "ws", create=True)
    workspace.windows_dir.mkdir()
    (workspace.windows_dir / "escape").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(SourceError, match="outside workspace") as error:
        workspace.resolve_record_path(path, "path of window 3")
    assert "\n" not in str(error.value) and "path of window 3" in str(error.value)


def test_exit_codes() -> None:
    assert exit_code(0) == EXIT_OK == 0 and exit_code(3) == EXIT_ITEMS_FAILED == 1


def test_workspace_lock_is_the_only_flock_user_in_the_stages() -> None:
    """One lock helper: no stage or whcore module calls flock itself."""
    root = Path(__file__).resolve().parent.parent
    offenders = [str(p.relative_to(root)) for folder in ("whcore", "harvest", "segment", "label", "finetune", "status")
                 for p in (root / folder).rglob("*.py")
                 if "fcntl.flock" in p.read_text(encoding="utf-8") and p.name != "lock.py"]
    assert offenders == []
