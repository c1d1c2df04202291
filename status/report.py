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
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable

from whcore.journal import (CHECKPOINT_PREFIX, DATASET_UNIT, FAILED_LEVEL, MODEL_UNIT, PUSH_UNIT, REJECTED_LEVEL,
                            SKIPPED_LEVEL, SOURCE_PREFIX, DoneEntry, OutcomeEntry, StageLog, contents_digest,
                            describe_changes, gc_paused, journal_line_count, listing_problem, source_unit,
                            stage_logs, torn_done_lines, unit_source_id, unit_step)
from whcore.journal_table import flat_contents, tuple_getter
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


def read_logs(workspace: Workspace) -> tuple[dict[str, StageLog], int, int]:
    """Latest journal lines per stage and unit, the journal line count, and the torn DONE lines.

    The log is read through ``whcore.journal.stage_logs``, whose index beside the log
    spares re-parsing 100k units on every call; the units are looked at in columns,
    one DoneEntry is built only for the few units (dataset, model) read in full.
    """
    logs = stage_logs(workspace.log_path)
    for stage in STAGES:
        logs.setdefault(stage, StageLog(stage))
    return logs, journal_line_count(workspace.log_path), torn_done_lines(workspace.log_path)


def workspace_status(workspace: Workspace) -> WorkspaceStatus:
    """Counts per stage and the rerun list, from ``logs/log.txt``."""
    with gc_paused():  # 300k stat results and no cycles: collections would only walk the columns
        return _workspace_status(workspace)


def _workspace_status(workspace: Workspace) -> WorkspaceStatus:
    logs, count, torn = read_logs(workspace)
    status = WorkspaceStatus(workspace.root, count, torn)
    rows = {stage: logs[stage].latest_done_rows() for stage in STAGES}
    for stage in STAGES:
        status.stages.append(count_stage(stage, logs[stage], rows[stage]))
        status.redo += stale_units(workspace, stage, logs[stage], rows[stage])
    for stage, previous in PREVIOUS_STAGE.items():
        status.redo += missing_sources(stage, logs[previous], rows[previous], logs[stage])
    status.redo += dataset_redo(logs["label"], rows["label"])
    status.redo += model_redo(logs["label"], logs["finetune"])
    status.stages[-1].notes += finetune_notes(logs["finetune"])
    return status


def counts_as_done(stage: str, unit: str) -> bool:
    """Whether a DONE unit is one of the stage's results rather than a step on the way.

    Sources are the results of harvest, segment and label (label's dataset is a note);
    finetune's are the exported model and its upload, not the baseline or checkpoints.
    """
    if stage == "finetune":
        return unit in (MODEL_UNIT, PUSH_UNIT)
    return unit_source_id(unit) is not None


def count_stage(stage: str, log: StageLog, rows: list[int]) -> StageStatus:
    """Counts of ``stage``'s units by their latest line; ``rows``: those whose latest line is DONE."""
    result = StageStatus(stage)
    unknown_hours = 0
    for unit, seconds in zip(map(log.done_unit.__getitem__, rows), log.extra_column(rows, "seconds")):
        if not counts_as_done(stage, unit):
            continue
        result.done += 1
        if isinstance(seconds, (int, float)):
            result.seconds += float(seconds)
        elif stage != "finetune":
            unknown_hours += 1
    outcomes = Counter(log.outcome_level[row] for row in log.latest_outcome_rows())
    result.failed, result.rejected, result.skipped = (outcomes[FAILED_LEVEL], outcomes[REJECTED_LEVEL],
                                                      outcomes[SKIPPED_LEVEL])
    if unknown_hours:
        result.notes.append(f"hours unknown for {unknown_hours} unit(s) journalled by an older version")
    if stage == "label" and isinstance(log.latest(DATASET_UNIT), DoneEntry):
        result.notes.append("dataset built")
    if stage == "label":
        windows = sum(map(int, log.extra_column(rows, "windows", 0)))
        kept = sum(map(int, log.extra_column(rows, "kept", 0)))
        if windows:
            result.notes.append(f"windows kept {kept}/{windows} ({windows - kept} rejected by the filters)")
    return result


def stale_units(workspace: Workspace, stage: str, log: StageLog, rows: list[int]) -> list[Redo]:
    """Units of ``stage`` a rerun with its latest options would redo, in the order of their latest lines.

    ``rows``: the units whose latest line is DONE."""
    redo: list[tuple[int, Redo]] = []
    model = log.latest(MODEL_UNIT)
    for row in log.latest_outcome_rows():
        unit = log.outcome_unit[row]
        if log.outcome_level[row] == FAILED_LEVEL and not superseded(unit, log.outcome_time[row], model):
            redo.append((log.outcome_seq[row], Redo(stage, unit, f"failed last time: {log.outcome_reason[row]}")))
    newest = newest_source_options(log, rows)
    differs = options_differ(newest) if newest is not None else None
    root = str(workspace.root)
    for row in rows:
        unit = log.done_unit[row]
        if model is not None and superseded(unit, log.done_time[row], model):
            continue
        problem = listing_problem(root, log.done_files[row])
        if problem is None and differs is not None and log.option_keys[row] is not None \
                and unit.startswith(SOURCE_PREFIX) and differs(log.option_keys[row], log.option_values[row]):
            problem = "made with other options than the latest run: " + \
                describe_changes(run_options(log.done_entry(row).options), newest)
        if problem is not None:
            redo.append((log.done_seq[row], Redo(stage, unit, problem)))
    return [item for _, item in sorted(redo, key=itemgetter(0))]


def superseded(unit: str, time: str, model: DoneEntry | OutcomeEntry | None) -> bool:
    """A checkpoint journalled (at ``time``) before the model was exported: finetune removes those on purpose.

    A rerun with the same settings finds the model done and never reads them; one with
    other settings trains afresh under other params, so they are never resumed either.
    """
    return unit.startswith(CHECKPOINT_PREFIX) and isinstance(model, DoneEntry) and time <= model.time


def run_options(options: dict[str, Any]) -> dict[str, Any]:
    """A unit's options without the keys that name its own input."""
    return {k: v for k, v in options.items() if k not in INPUT_KEYS}


def options_differ(newest: dict[str, Any]) -> Callable[[tuple, tuple], bool]:
    """``differs(keys, values)``: whether a row's run options are not ``newest``.

    Rows with the same keys share one key tuple, so the positions of the run options
    are found once per tuple and 100k rows are compared without building a dict each.
    """
    newest_keys, newest_values = tuple(newest), tuple(newest.values())
    picks: dict[int, tuple[tuple, Callable[[tuple], tuple]]] = {}  # id(keys) -> run keys, their values' getter

    def differs(keys: tuple, values: tuple) -> bool:
        pick = picks.get(id(keys))
        if pick is None:
            positions = [i for i, key in enumerate(keys) if key not in INPUT_KEYS]
            pick = picks[id(keys)] = (tuple(keys[i] for i in positions), tuple_getter(positions))
        run_keys, run_values = pick[0], pick[1](values)
        if run_keys == newest_keys:
            return run_values != newest_values
        return dict(zip(run_keys, run_values)) != newest

    return differs


def newest_source_options(log: StageLog, rows: list[int]) -> dict[str, Any] | None:
    """Run options of the most recently finished source unit (lines are in time order)."""
    done = [row for row in rows if log.option_keys[row] is not None and log.done_unit[row].startswith(SOURCE_PREFIX)]
    if not done:
        return None
    newest = max(done, key=log.done_time.__getitem__)
    return run_options(dict(zip(log.option_keys[newest], log.option_values[newest])))


def missing_sources(stage: str, previous: StageLog, previous_rows: list[int], log: StageLog) -> list[Redo]:
    """Sources the previous stage finished (``previous_rows``: its units whose latest line is DONE)
    that ``stage`` has no line for."""
    return [Redo(stage, unit, "not done yet (the previous stage finished it)")
            for unit in map(previous.done_unit.__getitem__, previous_rows)
            if unit.startswith(SOURCE_PREFIX) and unit not in log.done_row and unit not in log.outcome_row]


def dataset_redo(label: StageLog, rows: list[int]) -> list[Redo]:
    """The dataset is rebuilt when a label file differs from the ones it was built from.

    ``rows``: label's units whose latest line is DONE."""
    sources = [row for row in rows if unit_source_id(label.done_unit[row])]
    if not sources:
        return []
    dataset = label.latest(DATASET_UNIT)
    if not isinstance(dataset, DoneEntry):
        return [Redo("label", DATASET_UNIT, "not built yet")]
    labelled = {unit_source_id(label.done_unit[row]): row for row in sources}
    built_from = (dataset.options or {}).get("labels")
    if isinstance(built_from, str):  # the digest of the label files it was built from
        if built_from == contents_digest({sid: label.done_files[row] for sid, row in labelled.items()}):
            return []
        stale = labelled_since(label, labelled, dataset.time)  # may be none: a file changed, not relabelled
    elif isinstance(built_from, dict):  # earlier versions listed every label file
        stale = [sid for sid, row in labelled.items() if built_from.get(sid) != flat_contents(label.done_files[row])]
        if not stale:
            return []
    else:
        stale = labelled_since(label, labelled, dataset.time)
        if not stale:
            return []
    named = f": {', '.join(source_unit(s) for s in sorted(stale)[:5])}" if stale else ""
    return [Redo("label", DATASET_UNIT, f"labels changed since it was built{named}")]


def labelled_since(label: StageLog, labelled: dict[str, int], time: str) -> list[str]:
    """Sources whose labels were journaled after ``time`` (source id -> row in ``labelled``)."""
    return [sid for sid, row in labelled.items() if label.done_time[row] > time]


def file_contents(files: dict[str, list]) -> dict[str, list]:
    """A DONE line's files by content alone (size, sha256): a rebuild that rewrote a file
    with the same bytes (a new modification time) did not change what was trained on."""
    return {path: list(entry[:2]) for path, entry in files.items()}


def model_redo(label: StageLog, finetune: StageLog) -> list[Redo]:
    """The model is retrained when the dataset it was trained on changed since.

    The model's line records the dataset files it was trained on (``null``: a
    dataset from elsewhere); lines written before that record are judged by time.
    """
    dataset, model = label.latest(DATASET_UNIT), finetune.latest(MODEL_UNIT)
    if isinstance(dataset, DoneEntry) and isinstance(model, DoneEntry) and dataset.time > model.time:
        recorded = "dataset_files" in model.extra
        trained_on = model.extra.get("dataset_files")
        if not recorded or (trained_on is not None and file_contents(trained_on) != file_contents(dataset.files)):
            return [Redo("finetune", MODEL_UNIT, "the dataset changed after the model was trained")]
    push = finetune.latest(PUSH_UNIT)
    if isinstance(push, OutcomeEntry):
        return [Redo("finetune", PUSH_UNIT, f"push failed last time: {push.reason}")]
    return []


def finetune_notes(log: StageLog) -> list[str]:
    model = log.latest(MODEL_UNIT)
    steps = [unit_step(unit) for row in log.latest_done_rows()
             if (unit := log.done_unit[row]).startswith(CHECKPOINT_PREFIX)
             and not superseded(unit, log.done_time[row], model)]
    notes = []
    if steps:
        notes.append(f"latest checkpoint: step {max(s for s in steps if s is not None)}")
    if isinstance(model, DoneEntry):
        notes.append(f"model exported ({model.extra.get('steps', '?')} steps; its checkpoints were removed)")
    elif steps:
        notes.append("model not exported yet: a rerun resumes from the latest checkpoint")
    push = log.latest(PUSH_UNIT)
    if isinstance(push, DoneEntry):
        notes.append("pushed to the Hub")
    return notes
