"""Count each stage's units by outcome and list what a rerun would redo, from the journal.

A unit's state is its latest journal line: DONE (and its files still intact),
FAILED, REJECTED or SKIPPED. A rerun redoes a unit that failed, one whose listed
files are missing or altered, one made with other options than the stage's latest
run, and the sources the previous stage finished that this stage has not
(segment after harvest, label after segment); the dataset is rebuilt when the
labels it was built from changed, and the model retrained when the dataset it
was trained on changed. Checkpoints journalled before the model was exported
are superseded by it (finetune removes them on purpose) and never redone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whcore.journal import (CHECKPOINT_PREFIX, DATASET_UNIT, FAILED_LEVEL, MODEL_UNIT, PUSH_UNIT,
                            REJECTED_LEVEL, SKIPPED_LEVEL, DoneEntry, OutcomeEntry, content_listing,
                            describe_changes, files_problem, read_journal, source_unit, torn_done_lines,
                            unit_source_id, unit_step)
from whcore.workspace import Workspace

STAGES = ("harvest", "segment", "label", "finetune")
PREVIOUS_STAGE = {"segment": "harvest", "label": "segment"}  # source units flow on
SECONDS_PER_HOUR = 3600
# Params keys that name a unit's own input rather than a run option: they differ from
# source to source by design, so they never count as "options changed".
INPUT_KEYS = frozenset({"audio", "sha256", "windows", "labels", "dataset", "input", "model_fingerprint"})


@dataclass(frozen=True)
class Redo:
    """One unit a rerun would (re)do, and why."""

    stage: str
    unit: str
    reason: str


@dataclass
class StageStatus:
    """Counts of one stage's units by their latest journal line."""

    stage: str
    done: int = 0
    failed: int = 0
    rejected: int = 0
    skipped: int = 0
    seconds: float = 0.0  # audio hours of the done source units (label: kept windows)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "done": self.done, "failed": self.failed, "rejected": self.rejected,
                "skipped": self.skipped, "hours": round(self.seconds / SECONDS_PER_HOUR, 4), "notes": self.notes}


@dataclass
class WorkspaceStatus:
    """Everything ``python -m status`` prints."""

    root: Path
    journal_lines: int = 0
    torn_lines: int = 0  # DONE lines cut short by a kill: they never counted
    stages: list[StageStatus] = field(default_factory=list)
    redo: list[Redo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"workspace": str(self.root), "journal_lines": self.journal_lines, "torn_lines": self.torn_lines,
                "stages": [s.to_dict() for s in self.stages],
                "redo": [{"stage": r.stage, "unit": r.unit, "reason": r.reason} for r in self.redo]}


Latest = dict[str, dict[str, DoneEntry | OutcomeEntry]]  # stage -> unit -> latest journal line


def read_latest(workspace: Workspace) -> tuple[Latest, int, int]:
    """Latest journal line per stage and unit, the journal line count, and the torn DONE lines.

    The log is read through ``whcore.journal.read_journal``, whose index beside the log
    spares re-parsing 100k units on every call.
    """
    latest: Latest = {stage: {} for stage in STAGES}
    entries = read_journal(workspace.log_path)
    for entry in entries:
        latest.setdefault(entry.stage, {})[entry.unit] = entry
    return latest, len(entries), torn_done_lines(workspace.log_path)


def workspace_status(workspace: Workspace) -> WorkspaceStatus:
    """Counts per stage and the rerun list, from ``logs/log.txt``."""
    latest, count, torn = read_latest(workspace)
    status = WorkspaceStatus(workspace.root, count, torn)
    for stage in STAGES:
        units = latest.get(stage, {})
        status.stages.append(count_stage(stage, units))
        status.redo += stale_units(workspace, stage, units)
    for stage, previous in PREVIOUS_STAGE.items():
        status.redo += missing_sources(stage, latest.get(previous, {}), latest.get(stage, {}))
    status.redo += dataset_redo(latest.get("label", {}))
    status.redo += model_redo(latest.get("label", {}), latest.get("finetune", {}))
    status.stages[-1].notes += finetune_notes(latest.get("finetune", {}))
    return status


def counts_as_done(stage: str, unit: str) -> bool:
    """Whether a DONE unit is one of the stage's results rather than a step on the way.

    Sources are the results of harvest, segment and label (label's dataset is a note);
    finetune's are the exported model and its upload, not the baseline or checkpoints.
    """
    if stage == "finetune":
        return unit in (MODEL_UNIT, PUSH_UNIT)
    return unit_source_id(unit) is not None


def count_stage(stage: str, units: dict[str, DoneEntry | OutcomeEntry]) -> StageStatus:
    result = StageStatus(stage)
    outcomes = Counter()
    unknown_hours = 0
    for unit, entry in units.items():
        if isinstance(entry, DoneEntry):
            if not counts_as_done(stage, unit):
                continue
            result.done += 1
            seconds = entry.extra.get("seconds")
            if isinstance(seconds, (int, float)):
                result.seconds += float(seconds)
            elif stage != "finetune":
                unknown_hours += 1
        else:
            outcomes[entry.outcome] += 1
    result.failed, result.rejected, result.skipped = (outcomes[FAILED_LEVEL], outcomes[REJECTED_LEVEL],
                                                      outcomes[SKIPPED_LEVEL])
    if unknown_hours:
        result.notes.append(f"hours unknown for {unknown_hours} unit(s) journalled by an older version")
    if stage == "label" and isinstance(units.get(DATASET_UNIT), DoneEntry):
        result.notes.append("dataset built")
    if stage == "label":
        windows = sum(int(e.extra.get("windows", 0)) for e in units.values() if isinstance(e, DoneEntry))
        kept = sum(int(e.extra.get("kept", 0)) for e in units.values() if isinstance(e, DoneEntry))
        if windows:
            result.notes.append(f"windows kept {kept}/{windows} ({windows - kept} rejected by the filters)")
    return result


def stale_units(workspace: Workspace, stage: str, units: dict[str, DoneEntry | OutcomeEntry]) -> list[Redo]:
    """Units of ``stage`` a rerun with its latest options would redo."""
    redo: list[Redo] = []
    newest = newest_source_options(units)
    for unit, entry in units.items():
        if superseded(unit, entry, units):
            continue
        if isinstance(entry, OutcomeEntry):
            if entry.outcome == FAILED_LEVEL:
                redo.append(Redo(stage, unit, f"failed last time: {entry.reason}"))
            continue
        problem = files_problem(workspace, entry)
        if problem is None and unit_source_id(unit) is not None and newest is not None \
                and entry.options is not None and run_options(entry.options) != newest:
            problem = "made with other options than the latest run: " + \
                describe_changes(run_options(entry.options), newest)
        if problem is not None:
            redo.append(Redo(stage, unit, problem))
    return redo


def superseded(unit: str, entry: DoneEntry | OutcomeEntry, units: dict[str, DoneEntry | OutcomeEntry]) -> bool:
    """A checkpoint journalled before the model was exported: finetune removes those on purpose.

    A rerun with the same settings finds the model done and never reads them; one with
    other settings trains afresh under other params, so they are never resumed either.
    """
    model = units.get(MODEL_UNIT)
    return (unit.startswith(CHECKPOINT_PREFIX) and isinstance(model, DoneEntry)
            and entry.time <= model.time)


def run_options(options: dict[str, Any]) -> dict[str, Any]:
    """A unit's options without the keys that name its own input."""
    return {k: v for k, v in options.items() if k not in INPUT_KEYS}


def newest_source_options(units: dict[str, DoneEntry | OutcomeEntry]) -> dict[str, Any] | None:
    """Run options of the most recently finished source unit (lines are in time order)."""
    done = [e for u, e in units.items() if isinstance(e, DoneEntry) and unit_source_id(u) is not None
            and e.options is not None]
    return run_options(max(done, key=lambda e: e.time).options) if done else None


def missing_sources(stage: str, previous: dict[str, DoneEntry | OutcomeEntry],
                    units: dict[str, DoneEntry | OutcomeEntry]) -> list[Redo]:
    """Sources the previous stage finished that ``stage`` has no line for."""
    return [Redo(stage, unit, "not done yet (the previous stage finished it)") for unit, entry in previous.items()
            if isinstance(entry, DoneEntry) and unit_source_id(unit) is not None and unit not in units]


def dataset_redo(label: dict[str, DoneEntry | OutcomeEntry]) -> list[Redo]:
    """The dataset is rebuilt when a label file differs from the ones it was built from."""
    labelled = {unit_source_id(u): e for u, e in label.items() if isinstance(e, DoneEntry) and unit_source_id(u)}
    dataset = label.get(DATASET_UNIT)
    if not labelled:
        return []
    if not isinstance(dataset, DoneEntry):
        return [Redo("label", DATASET_UNIT, "not built yet")]
    built_from = (dataset.options or {}).get("labels")
    if not isinstance(built_from, dict):
        stale = [sid for sid, e in labelled.items() if e.time > dataset.time]
    else:
        stale = [sid for sid, e in labelled.items() if built_from.get(sid) != content_listing(e.files)]
    if stale:
        return [Redo("label", DATASET_UNIT, f"labels changed since it was built: "
                     f"{', '.join(source_unit(s) for s in sorted(stale)[:5])}")]
    return []


def file_contents(files: dict[str, list]) -> dict[str, list]:
    """A DONE line's files by content alone (size, sha256): a rebuild that rewrote a file
    with the same bytes (a new modification time) did not change what was trained on."""
    return {path: list(entry[:2]) for path, entry in files.items()}


def model_redo(label: dict[str, DoneEntry | OutcomeEntry], finetune: dict[str, DoneEntry | OutcomeEntry]) -> list[Redo]:
    """The model is retrained when the dataset it was trained on changed since.

    The model's line records the dataset files it was trained on (``null``: a
    dataset from elsewhere); lines written before that record are judged by time.
    """
    dataset, model = label.get(DATASET_UNIT), finetune.get(MODEL_UNIT)
    if isinstance(dataset, DoneEntry) and isinstance(model, DoneEntry) and dataset.time > model.time:
        recorded = "dataset_files" in model.extra
        trained_on = model.extra.get("dataset_files")
        if not recorded or (trained_on is not None and file_contents(trained_on) != file_contents(dataset.files)):
            return [Redo("finetune", MODEL_UNIT, "the dataset changed after the model was trained")]
    if isinstance(finetune.get(PUSH_UNIT), OutcomeEntry):
        return [Redo("finetune", PUSH_UNIT, f"push failed last time: {finetune[PUSH_UNIT].reason}")]
    return []


def finetune_notes(units: dict[str, DoneEntry | OutcomeEntry]) -> list[str]:
    steps = [unit_step(u) for u, e in units.items() if isinstance(e, DoneEntry) and u.startswith(CHECKPOINT_PREFIX)
             and not superseded(u, e, units)]
    notes = []
    if steps:
        notes.append(f"latest checkpoint: step {max(s for s in steps if s is not None)}")
    model = units.get(MODEL_UNIT)
    if isinstance(model, DoneEntry):
        notes.append(f"model exported ({model.extra.get('steps', '?')} steps; its checkpoints were removed)")
    elif steps:
        notes.append("model not exported yet: a rerun resumes from the latest checkpoint")
    push = units.get(PUSH_UNIT)
    if isinstance(push, DoneEntry):
        notes.append("pushed to the Hub")
    return notes
