"""End to end: the four real stages on the example recording, then rerun, lock and bad input.

The pipeline runs once per session (module fixture) exactly as a user runs
it: each stage is its CLI in a subprocess on one workspace.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from whcore.journal import parse_done_line, parse_journal_line
from whcore.records import WindowRecord
from whcore.window_audio import read_window
from whcore.workspace import Workspace, workspace_lock

FINETUNE_STEPS = 2
EXPECTED_WORDS = ("river", "weather", "rain", "water", "lecture")


def run_stage(python: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([python, "-m", *args], capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def stage_args(workspace: Path) -> list[list[str]]:
    ws = ["--workspace", str(workspace)]
    return [
        ["segment", *ws],
        ["label", *ws, "--language", "en"],
        ["finetune", *ws, "--model", "offline-base", "--language", "en", "--max-steps", str(FINETUNE_STEPS)],
    ]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, python: str, example_audio: Path) -> Path:
    workspace = tmp_path_factory.mktemp("e2e") / "ws"
    run_stage(python, "harvest", str(example_audio), "--workspace", str(workspace))
    for args in stage_args(workspace):
        run_stage(python, *args)
    return workspace


def done_units(workspace: Path, stage: str) -> set[str]:
    lines = (workspace / "logs" / "log.txt").read_text(encoding="utf-8").splitlines()
    return {e.unit for e in map(parse_done_line, lines) if e is not None and e.stage == stage}


def status_report(python: str, workspace: Path) -> dict:
    return json.loads(run_stage(python, "status", "--workspace", str(workspace), "--json").stdout)


def predicted_redo(python: str, workspace: Path) -> set[tuple[str, str]]:
    """(stage, unit) of every unit ``python -m status`` says a rerun would redo."""
    return {(r["stage"], r["unit"]) for r in status_report(python, workspace)["redo"]}


def rerun_all_stages(python: str, workspace: Path, example_audio: Path) -> set[tuple[str, str]]:
    """Rerun the four stages; the (stage, unit) of every unit they wrote a journal line for."""
    log = workspace / "logs" / "log.txt"
    start = log.stat().st_size
    run_stage(python, "harvest", str(example_audio), "--workspace", str(workspace))
    for args in stage_args(workspace):
        run_stage(python, *args)
    with open(log, "rb") as handle:
        handle.seek(start)
        lines = handle.read().decode("utf-8").splitlines()
    return {(e.stage, e.unit) for e in map(parse_journal_line, lines) if e is not None}


def output_mtimes(workspace: Path) -> dict[str, int]:
    folders = ["sources", "windows", "labels", "dataset", "model"]
    return {str(p): p.stat().st_mtime_ns for f in folders for p in (workspace / f).rglob("*") if p.is_file()}


def test_dataset_has_expected_words(pipeline: Path) -> None:
    from datasets import load_dataset

    dataset = load_dataset(str(pipeline / "dataset"))  # the Parquet shards, as users load them
    assert set(dataset) == {"train", "test"}
    for split in dataset.values():
        assert len(split) > 0
        assert {"transcription", "source_id", "start", "end"} <= set(split.column_names)
    text = " ".join(t for s in dataset.values() for t in s["transcription"]).lower()
    found = [w for w in EXPECTED_WORDS if w in text]
    assert len(found) >= 4, f"expected words missing from labels: {text[:400]}"
    row = dataset["train"][0]
    assert row["audio"]["sampling_rate"] == 16000
    assert row["source_id"] == "espeak_lecture"
    assert 0 <= row["start"] < row["end"]


def test_model_loads_in_transformers_pipeline(pipeline: Path, example_audio: Path) -> None:
    from transformers import pipeline as hf_pipeline

    asr = hf_pipeline("automatic-speech-recognition", model=str(pipeline / "model"), device="cpu")
    first = WindowRecord.from_dict(json.loads((pipeline / "windows" / "espeak_lecture" / "windows.jsonl")
                                              .read_text().splitlines()[0]))
    window = {"raw": read_window(Workspace(pipeline), first), "sampling_rate": 16000}
    text = asr(window, generate_kwargs={"num_beams": 1})["text"].lower()
    assert "lecture" in text or "river" in text, text


def test_every_stage_journaled(pipeline: Path) -> None:
    for stage in ("harvest", "segment", "label"):
        assert "source:espeak_lecture" in done_units(pipeline, stage), stage
    assert done_units(pipeline, "finetune"), "no finetune unit recorded"
    log = (pipeline / "logs" / "log.txt").read_text(encoding="utf-8")
    assert "--model auto: offline-base: no GPU" in log  # label's default seed on this CPU, with the reason


def test_status_of_a_finished_pipeline(pipeline: Path, python: str, example_audio: Path) -> None:
    stages = {s["stage"]: s for s in status_report(python, pipeline)["stages"]}
    assert [stages[s]["done"] for s in ("harvest", "segment", "label", "finetune")] == [1, 1, 1, 1]
    seconds = 69.95  # the example recording; label's windows cover all of it
    for stage in ("harvest", "segment", "label"):
        assert abs(stages[stage]["hours"] * 3600 - seconds) < 1.0, stages[stage]
    assert any("checkpoints were removed" in n for n in stages["finetune"]["notes"]), stages["finetune"]


def test_rerun_skips_finished_work(pipeline: Path, python: str, example_audio: Path) -> None:
    before = output_mtimes(pipeline)
    log_size = (pipeline / "logs" / "log.txt").stat().st_size
    assert predicted_redo(python, pipeline) == set()  # finetune removed its checkpoints: they are not redone
    assert rerun_all_stages(python, pipeline, example_audio) == set()
    assert output_mtimes(pipeline) == before
    new_lines = (pipeline / "logs" / "log.txt").read_text(encoding="utf-8")[log_size:].lower()
    for stage in ("harvest", "segment", "label", "finetune"):
        assert f"| {stage}" in new_lines
    assert "skip" in new_lines


def test_status_predicts_what_a_rerun_redoes(pipeline: Path, python: str, example_audio: Path) -> None:
    """Damage one unit of each source stage and the dataset: status names exactly what the rerun redoes."""
    (pipeline / "sources" / "audio" / "espeak_lecture.opus").unlink()
    (pipeline / "windows" / "espeak_lecture" / "audio.flac").unlink()
    (pipeline / "labels" / "espeak_lecture.jsonl").unlink()
    next((pipeline / "dataset" / "data").glob("test-*.parquet")).unlink()
    predicted = predicted_redo(python, pipeline)
    assert predicted == {("harvest", "source:espeak_lecture"), ("segment", "source:espeak_lecture"),
                         ("label", "source:espeak_lecture"), ("label", "dataset")}
    assert rerun_all_stages(python, pipeline, example_audio) == predicted  # the same dataset: no retraining
    assert predicted_redo(python, pipeline) == set()


def test_second_run_refused_while_locked(pipeline: Path, python: str) -> None:
    with workspace_lock(Workspace(pipeline), "test"):
        result = run_stage(python, "segment", "--workspace", str(pipeline), check=False)
    assert result.returncode != 0
    assert "busy" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("stage", ["segment", "label", "finetune"])
def test_missing_workspace_is_one_clear_line(stage: str, python: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = run_stage(python, stage, "--workspace", str(missing), check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and str(missing) in error_lines[0]
    assert not missing.exists()


@pytest.mark.parametrize("stage", ["segment", "label", "finetune"])
def test_empty_workspace_is_one_clear_line(stage: str, python: str, tmp_path: Path) -> None:
    result = run_stage(python, stage, "--workspace", str(tmp_path), check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert any(line.startswith("error:") for line in result.stderr.splitlines())


def test_unknown_model_and_language_are_clear(pipeline: Path, python: str) -> None:
    before = output_mtimes(pipeline)
    for args in (["label", "--model", "/no/such/model"], ["label", "--language", "klingon"],
                 ["finetune", "--model", "/no/such/model"], ["finetune", "--language", "xx"]):
        result = run_stage(python, args[0], "--workspace", str(pipeline), *args[1:], check=False)
        assert result.returncode != 0, args
        assert "Traceback" not in result.stderr, result.stderr
        assert any(line.startswith("error:") for line in result.stderr.splitlines()), result.stderr
    assert output_mtimes(pipeline) == before


def test_not_audio_source_logged_and_run_goes_on(python: str, tmp_path: Path, example_audio: Path) -> None:
    bogus = tmp_path / "notes.mp3"
    bogus.write_text("this is not audio")
    workspace = tmp_path / "ws"
    result = run_stage(python, "harvest", str(bogus), str(example_audio), "--workspace", str(workspace),
                       check=False)
    assert result.returncode == 1  # some items failed, the rest done, result.stderr
    log = (workspace / "logs" / "log.txt").read_text(encoding="utf-8")
    assert "notes" in log and "ERROR" in log
    records = [json.loads(p.read_text()) for p in (workspace / "sources").glob("*.json")]
    assert [r["source_id"] for r in records] == ["espeak_lecture"]
