"""Fault injection for the stage CLIs: SIGKILL at random points, then rerun, then compare.

Shared by ``tests/test_faults.py`` (a few kill points per stage, inside the suite's
time budget) and ``bench/faults.py`` (ten or more per stage). A stage is run as a
user runs it, ``python -m <stage>`` in a subprocess; a kill lands either after a
random delay within the uninterrupted run's duration or right after a random
journal line appears in ``logs/log.txt``. After every kill the workspace must be
consistent: each unit's latest DONE line still describes files that are whole.
After the final rerun the outputs must equal, byte for byte, those of an
uninterrupted run of the same stage on the same input.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from whcore.journal import DoneEntry, files_problem, read_journal  # noqa: E402
from whcore.workspace import Workspace  # noqa: E402

POLL_S = 0.02
MAX_TRIES_PER_KILL = 3  # kill points drawn per kill wanted: some runs outrun theirs
RUN_TIMEOUT_S = 600
IGNORED_TOP = ("logs",)  # the journal itself differs run to run (times, skips)


@dataclass(frozen=True)
class StageCommand:
    """How to run one stage on a workspace, and which folders it produces."""

    stage: str
    args: tuple[str, ...]  # after ``python -m <stage> --workspace W``
    outputs: tuple[str, ...]  # workspace folders compared with the uninterrupted run
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, workspace: Path) -> list[str]:
        return [sys.executable, "-m", self.stage, "--workspace", str(workspace), *self.args]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [self.env.get("PYTHONPATH"), str(REPO),
                                                           os.environ.get("PYTHONPATH")]))
        return env


@dataclass(frozen=True)
class KillPoint:
    """Where one kill lands: after ``delay_s`` seconds, or once the journal has ``lines`` new lines."""

    delay_s: float | None = None
    lines: int | None = None

    def describe(self) -> str:
        return f"after {self.delay_s:.2f} s" if self.delay_s is not None else f"after journal line {self.lines}"


def run(command: StageCommand, workspace: Path, timeout_s: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run the stage to the end."""
    return subprocess.run(command.argv(workspace), env=command.environment(), capture_output=True, text=True,
                          timeout=timeout_s, cwd=REPO)


def journal_line_count(workspace: Path) -> int:
    log = workspace / "logs" / "log.txt"
    return sum(1 for _ in read_journal(log)) if log.exists() else 0


def run_and_kill(command: StageCommand, workspace: Path, point: KillPoint, timeout_s: float = RUN_TIMEOUT_S) -> bool:
    """Start the stage and SIGKILL it at ``point``; False if it finished first."""
    start_lines = journal_line_count(workspace)
    process = subprocess.Popen(command.argv(workspace), env=command.environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=REPO)
    started = time.monotonic()
    try:
        while process.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > timeout_s:
                raise AssertionError(f"{command.stage} ran past {timeout_s} s")
            due = (elapsed >= point.delay_s if point.delay_s is not None
                   else journal_line_count(workspace) - start_lines >= (point.lines or 0))
            if due:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return True
            time.sleep(POLL_S)
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def kill_points(rng: random.Random, duration_s: float, journal_lines: int) -> Iterator[KillPoint]:
    """Endless kill points: alternately a random delay within the run and a random journal line."""
    for number in itertools.count():
        if number % 2 == 0 or journal_lines < 1:
            yield KillPoint(delay_s=round(rng.uniform(0.05, 0.95) * duration_s, 3))
        else:
            yield KillPoint(lines=rng.randint(1, max(1, journal_lines - 1)))  # before its last line


def inconsistencies(workspace: Path) -> list[str]:
    """Latest DONE entries whose files are no longer whole: what a kill must never cause."""
    ws = Workspace(workspace)
    latest: dict[tuple[str, str], DoneEntry] = {}
    for entry in read_journal(ws.log_path):
        if isinstance(entry, DoneEntry):
            latest[(entry.stage, entry.unit)] = entry
    problems = []
    for (stage, unit), entry in latest.items():
        problem = files_problem(ws, entry)
        if problem is not None:
            problems.append(f"{stage} {unit}: {problem}")
    return problems


def tree_digest(workspace: Path, folders: tuple[str, ...]) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folders`` (temps included: none may be left)."""
    digests = {}
    for name in folders:
        top = workspace / name
        if not top.exists():
            continue
        for path in sorted(top.rglob("*")):
            if path.is_file():
                digests[path.relative_to(workspace).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    return ([f"missing {k}" for k in missing] + [f"unexpected {k}" for k in extra]
            + [f"differs {k}" for k in changed])


def copy_workspace(source: Path, target: Path) -> Path:
    """A private copy of a workspace (symlinks kept as links)."""
    shutil.copytree(source, target, symlinks=True)
    return target


@dataclass
class FaultReport:
    """What one stage's fault run did."""

    stage: str
    kills: list[str] = field(default_factory=list)  # the kill points that landed
    finished_first: int = 0  # kill points the stage outran
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.stage}: {len(self.kills)} kills landed ({self.finished_first} runs finished first), "
                f"{'OK' if not self.problems else 'PROBLEMS: ' + '; '.join(self.problems[:5])}")


def kill_and_resume(command: StageCommand, before: Path, workspace: Path, points: Iterator[KillPoint],
                    kills: int, expected: dict[str, str]) -> FaultReport:
    """Kill the stage at ``kills`` points in turn, check the workspace after every kill, then finish and compare.

    Each restart resumes what the previous killed run left, so later kills land in
    partly finished states, as a user's repeated Ctrl-C or crashes would. When a run
    outruns its kill point, its output is compared and the workspace is reset to
    ``before`` (the state the stage started from), so the next kill lands in work again.
    """
    report = FaultReport(command.stage)
    if not workspace.exists():
        copy_workspace(before, workspace)
    for point in itertools.islice(points, kills * MAX_TRIES_PER_KILL):
        if len(report.kills) >= kills:
            break
        if run_and_kill(command, workspace, point):
            report.kills.append(point.describe())
            report.problems += [f"{point.describe()}: {p}" for p in inconsistencies(workspace)]
            continue
        report.finished_first += 1
        report.problems += [f"{point.describe()} (finished): {p}"
                            for p in differences(expected, tree_digest(workspace, command.outputs))]
        shutil.rmtree(workspace)
        copy_workspace(before, workspace)
    final = run(command, workspace)
    if final.returncode != 0:
        report.problems.append(f"final rerun exited {final.returncode}: {final.stderr[-800:]}")
    report.problems += differences(expected, tree_digest(workspace, command.outputs))
    return report
