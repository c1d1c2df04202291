"""Drive the sources of a workspace through decode -> cut -> write, resumably.

One source is one journal unit (``source:<id>``). Its windows are written into
a temp folder that ``whcore.publish.publish_folder`` swaps in as ``windows/<id>``
in one step only once every file and the manifest are on disk, and only then is
the DONE line written: a SIGKILL at any moment leaves either the previous
complete result or nothing that counts, and the rerun redoes exactly the
unfinished sources. Any error in one source is logged as one FAILED line and the
run goes on with the next.
Sources run in a small thread pool: each has its own ffmpeg process, so two
sources keep both cores busy while Python only cuts and writes.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from tqdm import tqdm

from whcore.cli import disk_full_message, is_disk_full
from whcore.errors import SourceError
from whcore.journal import Journal, ParamsDigester, source_unit
from whcore.publish import publish_folder, sweep_stale
from whcore.records import FLAC_FORMAT, SAMPLE_RATE, WAV_FORMAT, SourceRecord, WindowRecord, samples_to_seconds
from whcore.skips import SkipLines
from whcore.workspace import Workspace, require_sources

from segment.windows import WindowPlan

if TYPE_CHECKING:  # the cutting machinery (numpy, soundfile, ffmpeg) is imported when a source is cut:
    # a rerun with every source done never needs it, and importing it was 0.08 s of a 2 s rerun at 100k
    import numpy as np

    from segment.writer import FlacStore, WindowWriter

STAGE = "segment"
LEGACY_OLD_PREFIX = ".old-"  # replaced results of earlier versions (their temps are swept as stale)
MANIFEST_NAME = "windows.jsonl"
PLAIN_ID = re.compile(r"(?!\.{1,2}$)[A-Za-z0-9_.-]{1,128}")  # a source id is a folder name: never "." or ".."
OUTPUT_FORMAT = 1  # bump when the bytes written for the same options change


@dataclass(frozen=True)
class SegmentOptions:
    """Everything that shapes a run (the plan and VAD mode also shape the output)."""

    plan: WindowPlan
    vad_mode: int  # webrtcvad aggressiveness 0..3
    jobs: int = 2  # sources decoded at once, one ffmpeg each
    store: str = FLAC_FORMAT  # FLAC_FORMAT: each source once as FLAC + a window index; WAV_FORMAT: a WAV per window


@dataclass(slots=True)
class SourceOutcome:  # not frozen: a rerun makes 100k of these, and a frozen one costs 4x as much to make
    source_id: str
    status: str  # "done", "skipped" (already done, or too short by rule) or "failed"
    windows: int = 0
    seconds: float = 0.0  # decoded audio length
    error: str = ""


class TooShortError(SourceError):
    """The source is shorter than --min-tail: nothing to cut, by rule (a skip, not a failure)."""


def unit_params(record: SourceRecord, options: SegmentOptions) -> dict[str, Any]:
    """What decides this source's windows (journal params): its audio and the options."""
    return params_digester(options).params(audio=record.audio_path, sha256=record.sha256)


@functools.lru_cache(maxsize=4)
def params_digester(options: SegmentOptions) -> ParamsDigester:
    """``unit_params`` without the source's audio path and sha256, encoded once per run (100k sources)."""
    plan = options.plan
    return ParamsDigester({
        "window_s": samples_to_seconds(plan.window), "overlap_s": samples_to_seconds(plan.window - plan.hop),
        "min_tail_s": samples_to_seconds(plan.min_tail), "snap_s": samples_to_seconds(plan.snap),
        "vad_mode": options.vad_mode, "rate_hz": SAMPLE_RATE, "format": OUTPUT_FORMAT,
        # absent for WAV windows, so workspaces cut before the FLAC store keep their DONE lines
        **({"store": options.store} if options.store != WAV_FORMAT else {})}, ("audio", "sha256"))


def record_signature(path: str) -> str | None:
    """Inode, size and modification time (ns) of a source record, as one string (one object per
    DONE line in the journal index, not four); None if it cannot be stat'ed.

    Taken before the record is read and kept in its DONE line: while they are unchanged
    the record still says what the DONE line's params were made from, so a rerun need
    not read it (``skip_unchanged``). A rewrite (harvest replaces records by rename)
    changes the inode.
    """
    try:
        info = os.stat(path)
    except OSError:
        return None
    return f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"


def skip_unchanged(workspace: Workspace, options: SegmentOptions, journal: Journal, names: list[str],
                   skips: SkipLines) -> dict[str, float]:
    """Sources done with these options whose record is unchanged and whose windows are intact,
    found without reading their records: source id -> seconds cut.

    A rerun over 100k finished sources spent most of its time reading 100k JSON records
    to rebuild params the journal already holds in clear. Anything this cannot vouch
    for (an older DONE line without the record's signature, a changed record, missing
    windows) is left to the normal path, which reads the record.
    """
    digester = params_digester(options)
    digest, inputs_keys = digester.digest_values, digester.keys  # the DONE line's options that name the source
    done_values = journal.done_values_reader(("record", "seconds", "windows"), inputs_keys)
    stale_reason = journal.stale_reason
    folder = str(workspace.sources_dir)
    skipped: dict[str, float] = {}
    counts: list[object] = []
    for name in names:
        source_id = name[:-len(".json")]
        unit = source_unit(source_id)
        found = done_values(unit)
        if found is None:
            continue
        (recorded, seconds, windows), inputs = found
        if recorded is None or recorded != record_signature(f"{folder}/{name}"):
            continue
        if stale_reason(unit, digest(inputs)) is None:
            skipped[source_id] = float(seconds or 0.0)
            counts.append(windows)
    skips.lines(list(zip(skipped, counts)), lambda item: f"skip {item[0]}: already segmented with these options "
                                                         f"({'?' if item[1] is None else item[1]} windows)")
    return skipped


def load_sources(workspace: Workspace, journal: Journal, names: list[str]
                 ) -> tuple[list[SourceRecord], dict[str, str | None], list[SourceOutcome]]:
    """Readable source records of the record files ``names``, each record's signature (taken before
    it was read), plus a failure for each record that is not."""
    records, signatures, failures = [], {}, []
    for path in (workspace.sources_dir / name for name in names):
        signature = record_signature(str(path))
        try:
            record = SourceRecord.read(path)
        except (OSError, ValueError, TypeError, AttributeError) as error:
            message = f"source record {path} is unreadable ({error}): rerun `python -m harvest`"
            journal.mark_failed(source_unit(path.stem), message)
            failures.append(SourceOutcome(path.stem, "failed", error=message))
            continue
        if not isinstance(record.source_id, str) or not PLAIN_ID.fullmatch(record.source_id):
            message = (f"source record {path} has source_id {record.source_id!r}, not a plain id (letters, digits, "
                       "_ - .): it would name a folder outside windows/; rerun `python -m harvest`")
            journal.mark_failed(source_unit(path.stem), message)
            failures.append(SourceOutcome(path.stem, "failed", error=message))
            continue
        if not record.audio_path:
            message = f"source {record.source_id} has no audio_path in {path}: rerun `python -m harvest`"
            journal.mark_failed(source_unit(record.source_id), message)
            failures.append(SourceOutcome(record.source_id, "failed", error=message))
            continue
        records.append(record)
        signatures[record.source_id] = signature
    return records, signatures, failures


def known_seconds(record: SourceRecord) -> float | None:
    """The duration the record states, if it is a number (records are input: never trust their types)."""
    duration = record.duration
    return float(duration) if isinstance(duration, (int, float)) and duration > 0 else None


def sweep_staging(workspace: Workspace) -> None:
    """Remove temp folders a killed run left behind (those of live processes are kept)."""
    if not workspace.windows_dir.is_dir():
        return
    names = os.listdir(workspace.windows_dir)  # once, names only: a stat per folder costs at 100k sources
    sweep_stale(workspace.windows_dir, names=names)
    for name in names:
        if name.startswith(LEGACY_OLD_PREFIX) and (workspace.windows_dir / name).is_dir():
            shutil.rmtree(workspace.windows_dir / name)


def cut_source(workspace: Workspace, record: SourceRecord, options: SegmentOptions,
               writer: WindowWriter | FlacStore, advance: Callable[[float], None]) -> tuple[list[WindowRecord], int]:
    """Decode one source and store it with ``writer``; returns the window records and samples decoded."""
    from segment.decode import BYTES_PER_SAMPLE, READ_CHUNK_BYTES, pcm_chunks
    from segment.stream import cut_stream
    from segment.vad import StreamVad, rms_db
    from segment.writer import window_file_name

    audio = workspace.resolve_record_path(record.audio_path, f"audio_path of source {record.source_id}")
    relative_dir = workspace.relative(workspace.source_windows_dir(record.source_id))
    decoded = 0
    vad = StreamVad(options.vad_mode)

    def judged_chunks() -> Iterator[np.ndarray]:
        nonlocal decoded
        for chunk in pcm_chunks(audio):
            decoded += len(chunk)
            vad.feed(chunk)
            writer.add_samples(chunk)
            yield chunk

    windows: list[WindowRecord] = []
    reported = 0
    for cut in cut_stream(judged_chunks(), options.plan, READ_CHUNK_BYTES // BYTES_PER_SAMPLE):
        name, offset = writer.place(window_file_name(record.source_id, cut.start, cut.end), cut.start, cut.samples)
        windows.append(WindowRecord(source_id=record.source_id, index=cut.index,
                                    start=samples_to_seconds(cut.start), end=samples_to_seconds(cut.end),
                                    path=f"{relative_dir}/{name}", offset=offset,
                                    rms_db=round(rms_db(cut.samples), 2),
                                    speech_ratio=round(vad.speech_ratio(cut.start, cut.end), 4)))
        vad.forget_before(options.plan.bounds(cut.index + 1)[0] - options.plan.snap)
        advance(samples_to_seconds(cut.end - reported))
        reported = cut.end
    if decoded == 0:
        raise SourceError(f"{audio} decodes to no audio at all: check the file plays, or remove "
                          f"sources/{record.source_id}.json")
    if not windows:
        raise TooShortError(f"{audio} is {samples_to_seconds(decoded):.2f} s long, shorter than --min-tail "
                            f"{samples_to_seconds(options.plan.min_tail):g} s: no window to cut "
                            "(lower --min-tail to keep it)")
    return windows, decoded


def open_store(options: SegmentOptions, staging: Path) -> WindowWriter | FlacStore:
    """Where a source's audio goes: one FLAC (default) or a WAV per window."""
    from segment.writer import FlacStore, WindowWriter

    return WindowWriter(staging) if options.store == WAV_FORMAT else FlacStore(staging)


def segment_source(workspace: Workspace, record: SourceRecord, options: SegmentOptions, journal: Journal,
                   log: Any, advance: Callable[[float], None], signature: str | None,
                   skips: SkipLines) -> SourceOutcome:
    """Cut one source unless the journal says it is done with these options.

    ``signature`` is the record file's ``record_signature`` from before it was read
    (kept in the DONE line, so the next rerun can skip this source unread).
    """
    source_id, unit = record.source_id, source_unit(record.source_id)
    params = unit_params(record, options)
    if journal.is_done(unit, params):
        count = journal.entries()[unit].extra.get("windows", "?")
        skips.line(f"skip {source_id}: already segmented with these options ({count} windows)")
        advance(known_seconds(record) or 0.0)
        return SourceOutcome(source_id, "skipped")
    final_dir = workspace.source_windows_dir(source_id)
    with publish_folder(final_dir, provenance={"stage": STAGE, "options": params}) as staging:
        with open_store(options, staging) as writer:
            windows, samples = cut_source(workspace, record, options, writer, advance)
            manifest = staging / MANIFEST_NAME
            manifest.write_text("".join(json.dumps(w.to_dict(), ensure_ascii=False) + "\n" for w in windows),
                                encoding="utf-8")
            writer.finish(manifest)
            files = writer.paths
    seconds = samples_to_seconds(samples)
    journal.mark_done(unit, params, files=[final_dir / f.name for f in files],
                      hashed=[final_dir / MANIFEST_NAME], extra={"windows": len(windows), "seconds": seconds,
                                                           "record": signature})
    log.info(f"segmented {source_id}: {len(windows)} windows from {seconds:.1f} s of audio")
    return SourceOutcome(source_id, "done", len(windows), seconds)


def source_failure(error: Exception) -> str:
    """One line for a source that could not be cut, whatever went wrong."""
    if is_disk_full(error):
        return disk_full_message(error)
    if isinstance(error, SourceError):
        return str(error)
    if isinstance(error, OSError):
        return f"{error} (check the file's permissions and the disk)"
    return (f"unexpected {type(error).__name__}: {error}; the source was not cut, the others go on; "
            "please report this with the log")


def segment_workspace(workspace: Workspace, options: SegmentOptions, journal: Journal,
                      log: Any) -> list[SourceOutcome]:
    """Segment every source of the workspace, ``options.jobs`` at a time; per-source errors are logged."""
    names = require_sources(workspace)
    skips = SkipLines(log, "already segmented with these options")
    unread = skip_unchanged(workspace, options, journal, names, skips)
    records, signatures, outcomes = load_sources(workspace, journal,
                                                 [n for n in names if n[:-len(".json")] not in unread])
    outcomes = [SourceOutcome(source_id, "skipped") for source_id in unread] + outcomes
    sweep_staging(workspace)
    known = [known_seconds(r) for r in records]
    total = sum(known) + sum(unread.values()) if (records or unread) and all(d for d in known) else None
    with tqdm(total=total, unit="s", unit_scale=True, desc="segment", disable=None) as bar:
        bar.update(sum(unread.values()))

        def one(record: SourceRecord) -> SourceOutcome:
            try:
                return segment_source(workspace, record, options, journal, log, bar.update,
                                      signatures.get(record.source_id), skips)
            except TooShortError as error:
                journal.mark_skipped(source_unit(record.source_id), str(error))
                return SourceOutcome(record.source_id, "skipped", error=str(error))
            except Exception as error:  # noqa: BLE001 - one bad source must not stop the others
                message = source_failure(error)
                log.debug(f"{record.source_id}: traceback: {''.join(traceback.format_exception(error))}")
                journal.mark_failed(source_unit(record.source_id), message)
                return SourceOutcome(record.source_id, "failed", error=message)

        if options.jobs <= 1 or len(records) <= 1:
            outcomes += [one(record) for record in records]
        else:
            with ThreadPoolExecutor(max_workers=min(options.jobs, len(records))) as pool:
                outcomes += list(pool.map(one, records))
    skips.close()
    return outcomes
