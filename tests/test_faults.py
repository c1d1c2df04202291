"""Every stage SIGKILLed at random points, then rerun: the result equals an uninterrupted run.

One uninterrupted pipeline (harvest of a local recording and a loopback "YouTube"
playlist, segment, label, a two-step finetune) is the reference. Each stage is then
rerun from a copy of the workspace as it stood before that stage, killed at seeded
random points (random delays and random journal lines) with a consistency check
after every kill, and finished; its outputs must be byte-identical to the
reference (finetune: same final step, same losses and evaluations, checkpoints
recorded intact). The suite kills harvest, segment and label; ``bench/faults.py`` kills
every stage, finetune included, ten or more times.
A full disk is the other fault: one clear line, nothing corrupt, and a rerun once
space is freed completes.
"""

from __future__ import annotations

import json
import random
import time
import resource
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from faultkit import (FaultReport, StageCommand, copy_workspace, differences, inconsistencies, journal_line_count,
                      kill_and_resume, kill_points, run, tree_digest)
from ytfake.harness import PLUGIN_DIR, sine_audio
from ytfake.server import FakeTube, FakeTubeServer

from conftest import EXAMPLE_AUDIO

SEED = 20261122
# Finetune is killed at random points only in bench/faults.py: one two-step run costs minutes on
# 2 cores. In the suite, tests/test_finetune_train.py kills it right after its first checkpoint
# is journalled and checks the resumed run's final step, losses and exported model.
SUITE_KILLS = {"harvest": 3, "segment": 3, "label": 3}
FINETUNE_ARGS = ("--model", "offline-base", "--max-steps", "2", "--eval-steps", "1", "--learning-rate", "1e-4",
                 "--warmup-steps", "0", "--effective-batch", "1")
LECTURE_SECONDS = 20  # of the example recording: 3 windows (train, gap, test)
TONE_SECONDS = 3


@dataclass
class Golden:
    """The uninterrupted reference, built stage by stage on demand: per stage, the workspace before
    it, its outputs, its duration and how many journal lines it wrote."""

    commands: dict[str, StageCommand]
    root: Path
    before: dict[str, Path] = field(default_factory=dict)
    expected: dict[str, dict[str, str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    journal_lines: dict[str, int] = field(default_factory=dict)

    @property
    def final(self) -> Path:
        return self.root / "reference"

    def upto(self, last: str) -> "Golden":
        """Run the stages up to ``last`` (those not run yet), uninterrupted."""
        self.final.mkdir(exist_ok=True)
        for stage, command in self.commands.items():
            if stage not in self.expected:
                self.before[stage] = copy_workspace(self.final, self.root / f"before-{stage}")
                lines = journal_line_count(self.final)
                started = time.monotonic()
                result = run(command, self.final)
                self.seconds[stage] = time.monotonic() - started
                assert result.returncode == 0, f"{stage}: {result.stderr[-2000:]}"
                self.journal_lines[stage] = journal_line_count(self.final) - lines
                self.expected[stage] = tree_digest(self.final, command.outputs)
            if stage == last:
                return self
        raise KeyError(last)


def lecture_file(folder: Path) -> Path:
    """The first LECTURE_SECONDS of the example recording, as a local source."""
    out = folder / "lecture.wav"
    if not out.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-t", str(LECTURE_SECONDS), "-i", str(EXAMPLE_AUDIO),
                        "-ac", "1", "-ar", "16000", str(out)], check=True)
    return out


def add_tones(tube: FakeTube) -> None:
    """Two CC tone videos in playlist PL, one served slowly so kills land mid-download."""
    tube.add_video("toneA", sine_audio(440, seconds=TONE_SECONDS))
    tube.add_video("toneB", sine_audio(620, seconds=TONE_SECONDS, bitrate="128k"))
    tube.throttled.add("toneB.webm")  # ~50 KB at ~80 KB/s
    tube.playlists["PL"] = ["toneA", "toneB"]


def stage_commands(playlist_url: str, lecture: Path) -> dict[str, StageCommand]:
    return {
        "harvest": StageCommand("harvest", (str(lecture), playlist_url, "--sleep", "0", "--retries", "1"),
                                ("sources",), env={"PYTHONPATH": str(PLUGIN_DIR)}),
        "segment": StageCommand("segment", (), ("windows",)),
        "label": StageCommand("label", (), ("labels", "dataset")),
        "finetune": StageCommand("finetune", FINETUNE_ARGS, ()),
    }


@pytest.fixture(scope="module")
def tube_server():
    tube = FakeTube()
    add_tones(tube)
    with FakeTubeServer(tube) as server:
        yield server


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory, tube_server: FakeTubeServer) -> Golden:
    root = tmp_path_factory.mktemp("faults")
    return Golden(stage_commands(tube_server.playlist_url("PL"), lecture_file(root / "media")), root)


def finetune_facts(workspace: Path) -> dict:
    """What must survive kills: final step, losses and evaluations, exported model files."""
    results = json.loads((workspace / "model" / "results.json").read_text(encoding="utf-8"))
    return {"steps": results["steps"], "losses": [round(r["loss"], 4) for r in results["train_log"]],
            "evals": [{k: round(v, 4) if isinstance(v, float) else v for k, v in e.items()} for e in results["evals"]],
            "files": sorted(p.name for p in (workspace / "model").iterdir()),
            "ct2": sorted(p.name for p in (workspace / "model" / "ct2").iterdir())}


def stage_report(golden: Golden, stage: str, kills: int, workspace: Path) -> FaultReport:
    golden.upto(stage)
    rng = random.Random(f"{SEED}-{stage}")
    points = kill_points(rng, golden.seconds[stage], golden.journal_lines[stage])
    return kill_and_resume(golden.commands[stage], golden.before[stage], workspace, points, kills,
                           golden.expected[stage])


@pytest.mark.parametrize("stage", ["harvest", "segment", "label"])
def test_killed_stage_resumes_to_the_uninterrupted_output(golden: Golden, stage: str, tmp_path: Path) -> None:
    report = stage_report(golden, stage, SUITE_KILLS[stage], tmp_path / "ws")
    assert len(report.kills) == SUITE_KILLS[stage], f"not every kill landed: {report.summary()}"
    assert report.problems == [], report.summary()


# ---- disk full ------------------------------------------------------------------------------------

def small_filesystem(folder: Path, size: str) -> bool:
    """Mount a tmpfs of ``size`` on ``folder`` (root only); False where mounting is not allowed."""
    folder.mkdir(parents=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def file_size_limit(max_bytes: int):  # noqa: ANN201 - a preexec function
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return apply


@pytest.mark.parametrize("how", ["tmpfs", "rlimit"])
def test_disk_full_gives_one_line_leaves_nothing_corrupt_and_a_rerun_completes(
        golden: Golden, tmp_path: Path, how: str) -> None:
    workspace = copy_workspace(golden.upto("segment").before["segment"], tmp_path / "ws")
    command = golden.commands["segment"]
    mount = tmp_path / "small"
    if how == "tmpfs":
        if not small_filesystem(mount, "250k"):
            pytest.fail("tmpfs mount refused: run the suite as root, or see the rlimit case")
        (workspace / "windows").symlink_to(mount, target_is_directory=True)  # a symlinked windows/ too
        full = subprocess.run(command.argv(workspace), env=command.environment(), capture_output=True, text=True,
                              timeout=300)
    else:
        limit = (workspace / "logs" / "log.txt").stat().st_size + 200_000  # the log may grow a little
        full = subprocess.run(command.argv(workspace), env=command.environment(), capture_output=True, text=True,
                              timeout=300, preexec_fn=file_size_limit(limit))
    try:
        assert full.returncode == 1, full.stderr
        assert "Traceback" not in full.stderr
        failures = [line for line in full.stderr.splitlines() if line.startswith("FAILED")]
        assert failures and all("disk full" in line or "File too large" in line for line in failures), full.stderr
        assert inconsistencies(workspace) == []
        if how == "tmpfs":
            subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        rerun = run(command, workspace)
        assert rerun.returncode == 0, rerun.stderr
        assert differences(golden.expected["segment"], tree_digest(workspace, command.outputs)) == []
    finally:
        if how == "tmpfs":
            unmount(mount)
    shutil.rmtree(workspace, ignore_errors=True)
