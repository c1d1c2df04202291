"""Drive the sources of a workspace through decode -> cut -> write, resumably.

One source is one journal unit. Its windows are written into a staging
folder (``windows/.tmp-<id>``) that replaces ``windows/<id>`` by rename only
once every file and the manifest are on disk, and only then is the DONE line
written: a SIGKILL at any moment leaves either the previous complete result
or nothing that counts, and the rerun redoes exactly the unfinished sources.
Sources run in a small thread pool: each has its own ffmpeg process, so two
sources keep both cores busy while Python only cuts and writes.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from tqdm import tqdm

from whcore.atomic import TEMP_PREFIX
from whcore.errors import SourceError
from whcore.journal import Journal, params_digest
from whcore.records import SAMPLE_RATE, SourceRecord, WindowRecord, samples_to_seconds
from whcore.workspace import Workspace, require_sources

from segment.decode import BYTES_PER_SAMPLE, READ_CHUNK_BYTES, pcm_chunks
from segment.stream import cut_stream
from segment.vad import StreamVad, rms_db
from segment.windows import WindowPlan
from segment.writer import WindowWriter, fsync_path, window_file_name

STAGE = "segment"
OLD_PREFIX = ".old-"  # a finished result being replaced by a re-cut with other options
MANIFEST_NAME = "windows.jsonl"
OUTPUT_FORMAT = 1  # bump when the bytes written for the same options change


@dataclass(frozen=True)
class SegmentOptions:
    """Everything that shapes a run (the plan and VAD mode also shape the output)."""

    plan: WindowPlan
    vad_mode: int  # webrtcvad aggressiveness 0..3
    jobs: int = 2  # sources decoded at once, one ffmpeg each


@dataclass(frozen=True)
class SourceOutcome:
    source_id: str
    status: str  # "done", "skipped" or "failed"
    windows: int = 0
    seconds: float = 0.0  # decoded audio length
    error: str = ""


def unit_params(record: SourceRecord, options: SegmentOptions) -> str:
    """Journal digest of what decides this source's windows: its audio and the options."""
    plan = options.plan
    return params_digest({"window": plan.window, "hop": plan.hop, "min_tail": plan.min_tail,
                          "snap": plan.snap, "vad_mode": options.vad_mode, "rate": SAMPLE_RATE,
                          "audio": record.audio_path, "sha256": record.sha256,
                          "format": OUTPUT_FORMAT})


def load_sources(workspace: Workspace, log: Any) -> tuple[list[SourceRecord], list[SourceOutcome]]:
    """Readable source records, plus a failure for each record that is not."""
    records, failures = [], []
    for path in require_sources(workspace):
        try:
            record = SourceRecord.read(path)
        except (ValueError, TypeError, AttributeError) as error:
            message = f"source record {path} is not valid JSON ({error}): rerun `python -m harvest`"
            log.error(message)
            failures.append(SourceOutcome(path.stem, "failed", error=message))
            continue
        if not record.audio_path:
            message = f"source {record.source_id} has no audio_path in {path}: rerun `python -m harvest`"
            log.error(message)
            failures.append(SourceOutcome(record.source_id, "failed", error=message))
            continue
        records.append(record)
    return records, failures


def sweep_staging(workspace: Workspace) -> None:
    """Remove staging and replaced folders a killed run left behind."""
    if not workspace.windows_dir.is_dir():
        return
    for folder in workspace.windows_dir.iterdir():
        if folder.is_dir() and folder.name.startswith((TEMP_PREFIX, OLD_PREFIX)):
            shutil.rmtree(folder)


def cut_source(workspace: Workspace, record: SourceRecord, options: SegmentOptions, writer: WindowWriter,
               advance: Callable[[float], None]) -> tuple[list[WindowRecord], int]:
    """Decode one source and write its windows with ``writer``; returns the records and samples decoded."""
    audio = workspace.absolute(record.audio_path)
    relative_dir = workspace.relative(workspace.source_windows_dir(record.source_id))
    decoded = 0
    vad = StreamVad(options.vad_mode)

    def judged_chunks() -> Iterator[np.ndarray]:
        nonlocal decoded
        for chunk in pcm_chunks(audio):
            decoded += len(chunk)
            vad.feed(chunk)
            yield chunk

    windows: list[WindowRecord] = []
    reported = 0
    for cut in cut_stream(judged_chunks(), options.plan, READ_CHUNK_BYTES // BYTES_PER_SAMPLE):
        name = window_file_name(record.source_id, cut.start, cut.end)
        writer.write(name, cut.samples)
        windows.append(WindowRecord(source_id=record.source_id, index=cut.index,
                                    start=samples_to_seconds(cut.start), end=samples_to_seconds(cut.end),
                                    path=f"{relative_dir}/{name}", rms_db=round(rms_db(cut.samples), 2),
                                    speech_ratio=round(vad.speech_ratio(cut.start, cut.end), 4)))
        vad.forget_before(options.plan.bounds(cut.index + 1)[0] - options.plan.snap)
        advance(samples_to_seconds(cut.end - reported))
        reported = cut.end
    if decoded == 0:
        raise SourceError(f"{audio} decodes to no audio at all: check the file plays, or remove "
                          f"sources/{record.source_id}.json")
    if not windows:
        raise SourceError(f"{audio} is {samples_to_seconds(decoded):.2f} s long, shorter than --min-tail "
                          f"{samples_to_seconds(options.plan.min_tail):g} s: no window to cut "
                          "(lower --min-tail to keep it)")
    return windows, decoded


def publish(staging: Path, final_dir: Path) -> None:
    """Swap ``staging`` in as ``final_dir`` by renames; a kill in between leaves no counted result."""
    old = final_dir.with_name(OLD_PREFIX + final_dir.name)
    if final_dir.exists():
        os.replace(final_dir, old)
    os.replace(staging, final_dir)
    fsync_path(final_dir.parent)
    if old.exists():
        shutil.rmtree(old)


def segment_source(workspace: Workspace, record: SourceRecord, options: SegmentOptions, journal: Journal,
                   log: Any, advance: Callable[[float], None]) -> SourceOutcome:
    """Cut one source unless the journal says it is done with these options."""
    source_id = record.source_id
    params = unit_params(record, options)
    if journal.is_done(source_id, params):
        count = journal.entries()[source_id].extra.get("windows", "?")
        log.info(f"skip {source_id}: already segmented with these options ({count} windows)")
        advance(record.duration or 0.0)
        return SourceOutcome(source_id, "skipped")
    final_dir = workspace.source_windows_dir(source_id)
    staging = final_dir.with_name(TEMP_PREFIX + source_id)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with WindowWriter(staging) as writer:
            windows, samples = cut_source(workspace, record, options, writer, advance)
            manifest = staging / MANIFEST_NAME
            manifest.write_text("".join(json.dumps(w.to_dict(), ensure_ascii=False) + "\n" for w in windows),
                                encoding="utf-8")
            writer.finish(manifest)
            files = writer.paths
        publish(staging, final_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    seconds = samples_to_seconds(samples)
    journal.mark_done(source_id, params, files=[final_dir / f.name for f in files],
                      hashed=[final_dir / MANIFEST_NAME], extra={"windows": len(windows), "seconds": seconds})
    log.info(f"segmented {source_id}: {len(windows)} windows from {seconds:.1f} s of audio")
    return SourceOutcome(source_id, "done", len(windows), seconds)


def segment_workspace(workspace: Workspace, options: SegmentOptions, journal: Journal,
                      log: Any) -> list[SourceOutcome]:
    """Segment every source of the workspace, ``options.jobs`` at a time; per-source errors are logged."""
    records, outcomes = load_sources(workspace, log)
    sweep_staging(workspace)
    known = [r.duration for r in records]
    total = sum(known) if records and all(d for d in known) else None
    with tqdm(total=total, unit="s", unit_scale=True, desc="segment", disable=None) as bar:

        def one(record: SourceRecord) -> SourceOutcome:
            try:
                return segment_source(workspace, record, options, journal, log, bar.update)
            except (SourceError, OSError) as error:  # OSError: disk full, permissions, ...
                log.error(f"{record.source_id}: {error}")
                return SourceOutcome(record.source_id, "failed", error=str(error))

        if options.jobs <= 1 or len(records) <= 1:
            outcomes += [one(record) for record in records]
        else:
            with ThreadPoolExecutor(max_workers=min(options.jobs, len(records))) as pool:
                outcomes += list(pool.map(one, records))
    return outcomes
