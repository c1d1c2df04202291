"""Local media files as sources: probed, hashed and linked into ``sources/audio``.

A hard link costs no space and no time for a long recording; where the
workspace is on another filesystem (or the kernel refuses the link) the file
is copied. Either way the new name appears atomically. The licence is
recorded as ``user-provided``: the user vouches for files they bring.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from whcore.atomic import temp_path_for
from whcore.journal import file_sha256, source_unit
from whcore.records import SourceRecord

from harvest.context import HarvestContext
from harvest.license import USER_PROVIDED_LICENSE
from harvest.manifest import write_source_record
from harvest.outcome import Outcome, Status
from harvest.probe import NotAudioError, probe_audio
from harvest.sources import LocalSource

LOCAL_EXTRACTOR = "local"
LOCAL_PARAMS = {"kind": "local", "version": 1}  # journal params of a local file


def place_file(source: Path, destination: Path) -> None:
    """Hard-link (else copy) ``source`` to ``destination`` atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(destination)
    temp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(temp, destination)
    finally:
        temp.unlink(missing_ok=True)


def harvest_local(ctx: HarvestContext, source: LocalSource) -> Outcome:
    """Take one local file as a source (or skip it if it is already in place)."""
    key = (LOCAL_EXTRACTOR, str(source.path))
    known = ctx.catalog.source_id_of(key)
    if known is not None and ctx.journal.is_done(source_unit(known), LOCAL_PARAMS):
        ctx.log.info(f"skipped {known}: already have {source.path}")
        return Outcome(Status.SKIPPED, source.label, known, "already have")
    try:
        probe = probe_audio(source.path)
    except NotAudioError as error:
        ctx.log.error(f"failed {source.label}: not audio: {error}; pass an audio or video file")
        return Outcome(Status.FAILED, source.label, "", f"not audio: {error}")
    sha256 = file_sha256(source.path)
    duplicate = ctx.catalog.duplicate_of(sha256)
    if duplicate is not None and duplicate != known:
        ctx.log.info(f"skipped {source.label}: duplicate of source {duplicate} (same audio sha256)")
        return Outcome(Status.DUPLICATE, source.label, duplicate, f"duplicate of {duplicate}")
    source_id = ctx.catalog.allocate_id(key, source.path.stem, sha256[:8])
    audio = ctx.workspace.audio_dir / f"{source_id}{source.path.suffix.lower()}"
    place_file(source.path, audio)
    record = SourceRecord(
        source_id=source_id, extractor=LOCAL_EXTRACTOR, original_id=str(source.path),
        url=source.path.as_uri(), title=source.path.stem, duration=probe.duration,
        license=USER_PROVIDED_LICENSE, audio_path=ctx.workspace.relative(audio), sha256=sha256)
    record_path = write_source_record(ctx.workspace, record)
    ctx.journal.mark_done(source_unit(source_id), LOCAL_PARAMS, files=[audio], hashed=[record_path],
                          extra={"extractor": LOCAL_EXTRACTOR, "id": str(source.path), "seconds": probe.duration})
    ctx.catalog.add(record, key)
    ctx.log.info(f"added {source_id}: {source.path} ({probe.codec}, {probe.duration or 0:.1f} s)")
    return Outcome(Status.DOWNLOADED, source.label, source_id, "local file")
