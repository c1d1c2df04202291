"""``python -m status``: counts per stage and what a rerun would redo, read from a real workspace's journal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from faultkit import REPO
from whcore.journal import Journal, setup_logging, source_unit
from whcore.workspace import open_workspace

from conftest import EXAMPLE_AUDIO

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "segment"))
from signals import tone_steps, write_wav  # noqa: E402

RATE = 16000


def cli(module: str, workspace: Path, *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, "--workspace", str(workspace), *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=dict(os.environ))


def status_json(workspace: Path) -> dict:
    result = cli("status", workspace, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_status_counts_hours_and_rerun_reasons_of_real_runs(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    speech = media / "speech.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-t", "12", "-i", str(EXAMPLE_AUDIO), "-ac", "1", "-ar",
                    str(RATE), str(speech)], check=True)
    tiny = write_wav(media / "tiny.wav", tone_steps(0.5, RATE), RATE)
    broken = media / "broken.mp3"
    broken.write_bytes(np.random.default_rng(5).bytes(20_000))
    workspace = tmp_path / "ws"
    cli("harvest", workspace, speech, tiny, broken)  # broken.mp3 fails (its exit code is the bad-input table's business)
    assert cli("segment", workspace).returncode == 0  # tiny is skipped by rule
    (workspace / "windows" / "speech" / "audio.flac").unlink()

    report = status_json(workspace)
    stages = {s["stage"]: s for s in report["stages"]}
    assert (stages["harvest"]["done"], stages["harvest"]["failed"]) == (2, 1)
    assert (stages["segment"]["done"], stages["segment"]["skipped"], stages["segment"]["failed"]) == (1, 1, 0)
    assert abs(stages["segment"]["hours"] - 12 / 3600) < 1e-3
    redo = {(r["stage"], r["unit"]): r["reason"] for r in report["redo"]}
    assert redo[("segment", "source:speech")] == "windows/speech/audio.flac is missing"
    assert redo[("label", "source:speech")].startswith("not done yet")
    assert redo[("harvest", f"entry:{broken}")].startswith("failed last time: not audio")
    assert ("segment", "source:tiny") not in redo, "a skip by rule is not redone"
    table = cli("status", workspace).stdout
    assert "segment        1       0         0        1" in table and "a rerun would redo 3 unit(s)" in table


def test_status_names_the_option_that_differs_from_the_latest_run(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path / "ws", create=True)
    setup_logging(workspace, "segment")
    journal = Journal(workspace, "segment")
    journal.mark_done(source_unit("old"), {"window_s": 10.0, "audio": "sources/audio/old.wav"})
    journal.mark_done(source_unit("new"), {"window_s": 5.0, "audio": "sources/audio/new.wav"})
    redo = {r["unit"]: r["reason"] for r in status_json(workspace.root)["redo"] if r["stage"] == "segment"}
    assert redo == {"source:old": "made with other options than the latest run: window_s changed 10.0 → 5.0"}


def test_status_of_a_folder_without_a_journal_is_one_line_exit_2(tmp_path: Path) -> None:
    result = cli("status", tmp_path)
    assert result.returncode == 2 and result.stderr.strip().startswith("error:") and "log.txt" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
