"""finetune end to end on the real offline whisper-base, on CPU, on a tiny dataset.

One module fixture trains once (the expensive part) the way a user would
hit it: the run is SIGKILLed right after its first checkpoint is recorded,
then rerun to completion. The tests then check what that produced.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "finetune"))
from builders import build_audiofolder, cut_window, write_source_record  # noqa: E402

from whcore.journal import parse_done_line  # noqa: E402

STEPS = 4
EVAL_STEPS = 2
TRAIN_STARTS = [0.0, 16.0]  # two windows that do not overlap: one packed 20 s input
TEST_STARTS = [56.0]
KILL_AFTER_UNIT = "checkpoint:2"
EXPECTED_WORDS = ("thank", "listening", "lecture", "forest")


def finetune_args(workspace: Path) -> list[str]:
    return ["-m", "finetune", "--workspace", str(workspace), "--model", "offline-base",
            "--max-steps", str(STEPS), "--eval-steps", str(EVAL_STEPS), "--learning-rate", "1e-4",
            "--warmup-steps", "0", "--verbose"]


def done_lines(workspace: Path, stage: str = "finetune") -> list:
    lines = (workspace / "logs" / "log.txt").read_text(encoding="utf-8").splitlines()
    return [e for e in map(parse_done_line, lines) if e is not None and e.stage == stage]


def run_until_unit_then_kill(cmd: list[str], workspace: Path, unit: str, timeout_s: float = 400) -> None:
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            log = workspace / "logs" / "log.txt"
            if log.exists() and any(e.unit == unit for e in done_lines(workspace)):
                process.send_signal(signal.SIGKILL)
                process.wait()
                return
            if process.poll() is not None:
                raise AssertionError(f"finetune exited ({process.returncode}) before {unit}")
            time.sleep(0.2)
        raise AssertionError(f"{unit} not recorded within {timeout_s} s")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, python: str) -> Path:
    workspace = tmp_path_factory.mktemp("finetune") / "ws"
    build_audiofolder(workspace / "dataset", {"train": TRAIN_STARTS, "test": TEST_STARTS})
    write_source_record(workspace)
    (workspace / "logs").mkdir(parents=True)
    cmd = [python, *finetune_args(workspace)]
    run_until_unit_then_kill(cmd, workspace, KILL_AFTER_UNIT)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return workspace


def results(workspace: Path) -> dict:
    return json.loads((workspace / "model" / "results.json").read_text(encoding="utf-8"))


def test_resume_after_sigkill_continues_from_checkpoint(trained: Path) -> None:
    log = (trained / "logs" / "log.txt").read_text(encoding="utf-8")
    assert f"resuming from checkpoint-{EVAL_STEPS} (step {EVAL_STEPS} of {STEPS})" in log  # the folder name
    units = [e.unit for e in done_lines(trained)]
    assert units.count(KILL_AFTER_UNIT) == 1, units  # the finished checkpoint was not redone
    assert units.count("baseline") == 1, units
    assert f"checkpoint:{STEPS}" in units and units[-1] == "model"
    assert [e["step"] for e in results(trained)["train_log"]] == list(range(1, STEPS + 1))


def test_loss_decreases(trained: Path) -> None:
    losses = [e["loss"] for e in results(trained)["train_log"]]
    assert losses[-1] < 0.7 * losses[0], losses


def test_evaluations_before_during_and_after(trained: Path) -> None:
    data = results(trained)
    assert data["baseline"]["samples"] == len(TEST_STARTS)
    assert [e["step"] for e in data["evals"]] == [EVAL_STEPS, STEPS]
    assert data["finetuned"] is not None and data["best_step"] in (EVAL_STEPS, STEPS)
    assert data["headline_metric"] == "normalized_wer"


def test_model_loads_in_transformers_pipeline(trained: Path, tmp_path: Path) -> None:
    from transformers import pipeline

    wav = cut_window(TEST_STARTS[0], TEST_STARTS[0] + 10.0, tmp_path / "test.wav")
    asr = pipeline("automatic-speech-recognition", model=str(trained / "model"), device="cpu")
    text = asr(str(wav))["text"].lower()
    assert sum(word in text for word in EXPECTED_WORDS) >= 2, text
    generation = json.loads((trained / "model" / "generation_config.json").read_text())
    assert generation["language"] == "en" and generation["task"] == "transcribe"


def test_ct2_export_loads_in_faster_whisper(trained: Path, tmp_path: Path) -> None:
    from faster_whisper import WhisperModel

    wav = cut_window(TEST_STARTS[0], TEST_STARTS[0] + 10.0, tmp_path / "test.wav")
    model = WhisperModel(str(trained / "model" / "ct2"), device="cpu", compute_type="int8")
    segments, info = model.transcribe(str(wav), beam_size=1)
    text = " ".join(s.text for s in segments).lower()
    assert info.language == "en"
    assert sum(word in text for word in EXPECTED_WORDS) >= 2, text
    config = json.loads((trained / "model" / "ct2" / "config.json").read_text())
    assert config["suppress_ids_begin"]  # a Whisper CT2 config, as faster-whisper expects


def test_model_card_and_curves(trained: Path) -> None:
    card = (trained / "model" / "README.md").read_text(encoding="utf-8")
    assert "| model | WER | normalised WER | CER |" in card
    assert "(before)" in card and "(after)" in card
    assert "Rivers and the weather (espeak lecture)" in card  # attribution from the source record
    assert "base_model: offline-base" in card
    for name in ("loss.png", "metrics.png"):
        assert (trained / "model" / "curves" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((trained / "model" / "runs").glob("events.out.tfevents.*"))


def test_rerun_skips_finished_model(trained: Path, python: str) -> None:
    before = {p: p.stat().st_mtime_ns for p in (trained / "model").rglob("*") if p.is_file()}
    result = subprocess.run([python, *finetune_args(trained)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "nothing to do" in result.stderr
    assert {p: p.stat().st_mtime_ns for p in (trained / "model").rglob("*") if p.is_file()} == before


def test_plan_with_simulated_memory_is_printed_before_training(trained: Path) -> None:
    log = (trained / "logs" / "log.txt").read_text(encoding="utf-8")
    first_step = log.index("step 1:")
    assert "simulated peak" in log[:first_step]
    assert "memory:  = allocated peak" in log[:first_step]


def test_model_folder_is_one_publish_whose_ct2_copy_records_its_weights(trained: Path) -> None:
    from whcore.models import ct2_model_dir, export_is_current, model_fingerprint
    from whcore.publish import read_provenance

    model = trained / "model"
    weights = model_fingerprint(str(model))
    assert read_provenance(model)["weights"] == weights
    assert read_provenance(model / "ct2")["weights"] == weights
    assert export_is_current(model) and ct2_model_dir(str(model)) == model / "ct2"
    assert not list(trained.glob(".tmp-*")) and not list(model.glob(".tmp-*"))
    done = next(e for e in reversed(done_lines(trained)) if e.unit == "model")
    assert "model/ct2/model.bin" in done.files and "model/.provenance.json" in done.files


def test_published_files_carry_no_local_paths(trained: Path) -> None:
    import getpass

    for name in ("README.md", "results.json", ".provenance.json", "ct2/.provenance.json"):
        text = (trained / "model" / name).read_text(encoding="utf-8")
        assert str(trained) not in text and "file://" not in text and str(Path.home()) not in text, name
    user = getpass.getuser()
    if user not in ("root", "user", "runner"):
        assert user not in (trained / "model" / "README.md").read_text(encoding="utf-8")


def test_failed_push_is_its_own_unit_retried_by_the_next_run(trained: Path, python: str) -> None:
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_not_a_real_token"}
    cmd = [python, *finetune_args(trained), "--push-to-hub", "someone/whisper-harvest-test"]
    for attempt in range(2):
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 1, result.stderr[-2000:]  # an item failed, the run went on
        assert "nothing to do" in result.stderr  # the model is not retrained
        errors = [line for line in result.stderr.splitlines() if "upload failed" in line]
        assert len(errors) == 1 and "retry the upload" in errors[0], result.stderr[-2000:]
        assert not [e for e in done_lines(trained) if e.unit == "push"]
