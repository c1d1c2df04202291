"""``--model auto`` (the seed that fits the machine) and the CPU time estimate before a long run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from label_workspace import SENTENCES, AudioSource, build_workspace, espeak, fit  # noqa: E402

from label.cli import apply_seed_choice, build_parser, options_from
from label.estimate import announce_estimate, duration_text
from label.run import Labeller, segmented_sources
from label.seed_choice import OFFLINE_SEED, MachineFacts, choose_seed, machine_facts
from whcore.workspace import Workspace

TURBO = "openai/whisper-large-v3-turbo"


@pytest.mark.parametrize("facts, model, why", [
    (MachineFacts("cpu", None, True), OFFLINE_SEED, "no GPU"),
    (MachineFacts("cuda", 22.5, False), OFFLINE_SEED, "unreachable"),
    (MachineFacts("cuda", None, True), OFFLINE_SEED, "could not be read"),
    (MachineFacts("cuda", 22.5, True), TURBO, "22.5 GiB free"),
    (MachineFacts("cuda", 4.0, True), TURBO, "large-v3-turbo"),
    (MachineFacts("cuda", 3.2, True), "openai/whisper-small", "small"),
    (MachineFacts("cuda", 1.5, True), OFFLINE_SEED, "only 1.5 GiB free"),
])
def test_the_seed_is_the_strongest_that_fits_the_facts(facts: MachineFacts, model: str, why: str) -> None:
    choice = choose_seed(facts)
    assert choice.model == model and why in choice.reason and "\n" not in choice.reason


def test_gpu_facts_come_from_nvidia_smi_and_an_offline_hub_is_unreachable(tmp_path: Path, monkeypatch) -> None:
    """A GPU machine faked by its nvidia-smi (torch here has no CUDA), with the Hub offline."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\n[ \"$1\" = --query-gpu=memory.free ] && echo 22816\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing cached
    facts = machine_facts("cuda")
    assert facts == MachineFacts("cuda", pytest.approx(22816 / 1024), False)
    assert choose_seed(facts).model == OFFLINE_SEED
    assert machine_facts("cpu") == MachineFacts("cpu", None, False)


def test_auto_is_the_default_and_on_this_cpu_it_is_offline_base() -> None:
    args = build_parser().parse_args(["--workspace", "unused", "--device", "cpu"])
    assert args.model == "auto"
    line = apply_seed_choice(args)
    assert args.model == OFFLINE_SEED and line.startswith("--model auto: offline-base: no GPU")
    assert apply_seed_choice(args) is None  # a named model is kept as it is


def test_a_long_cpu_run_announces_its_duration_from_a_measured_rate(tmp_path: Path) -> None:
    speech = np.concatenate([fit(espeak(s), 10.0) for s in SENTENCES[:6]])  # 60 s
    root = build_workspace(tmp_path / "ws", [AudioSource("talk", speech)], window=10.0, overlap=2.0)
    workspace = Workspace(root)
    options = options_from(build_parser().parse_args(["--workspace", str(root), "--language", "en"]))
    lines: list[str] = []

    class Log:
        def info(self, message: str) -> None:
            lines.append(message)

    labeller = Labeller(workspace, options, Log())
    sources = segmented_sources(workspace)
    assert announce_estimate(workspace, options, labeller, sources, Log()) is None  # 60 s: under an hour
    assert labeller._engine is None, "a short run measures nothing and loads no model"
    lines.clear()
    estimate = announce_estimate(workspace, options, labeller, sources, Log(), above_s=30.0)
    assert estimate is not None and 0 < estimate < 600
    assert len(lines) == 2 and lines[0].startswith("loading model")
    assert lines[1].startswith("0.0 h of audio to label on cpu: about ") and "audio-seconds per second" in lines[1]


def test_durations_read_as_hours_and_minutes() -> None:
    assert [duration_text(s) for s in (20, 420, 7500, 36000)] == ["1 min", "7 min", "2 h 05 min", "10 h 00 min"]
