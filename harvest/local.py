"""Local media files as sources: probed, hashed and linked into ``sources/audio``.

A hard link costs no space and no time for a long recording; where the
workspace is on another filesystem (or the kernel refuses the link) the file
is copied. Either way the new name appears atomically. The licence is
recorded as ``user-provided``: the user vouches for files they bring.

Records and the manifest end up in dataset and model cards that get
published, so they never carry the absolute path of a local file (it names
the user's home folder): a file inside the workspace is recorded by its path
relative to the workspace, any other by its file name. The file is known to
later runs by a digest of its absolute path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from whcore.journal import file_sha256, source_unit
from whcore.publish import fsync_dir, temp_name
from whcore.workspace import Workspace
from whcore.records import SourceRecord

from harvest.context import HarvestContext
from harvest.license import USER_PROVIDED_LICENSE
from harvest.manifest import write_source_record
from harvest.outcome import Outcome, Status
from harvest.probe import NotAudioError, probe_audio
from harvest.sources import LocalSource

LOCAL_EXTRACTOR = "local"
LOCAL_PARAMS = {"kind": "local", "version": 2}  # journal params of a local file
PATH_DIGEST_CHARS = 16  # hex chars of sha256(absolute path) that key a local file


def place_file(source: Path, destination: Path) -> None:
    """Hard-link (else copy) ``source`` to ``destination`` atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_name(destination)
    temp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(temp, destination)
        fsync_dir(destination.parent)
    finally:
        temp.unlink(missing_ok=True)


def local_key(path: Path) -> tuple[str, str]:
    """The catalog key of a local file: its absolute path, digested (no user name in the journal)."""
    return (LOCAL_EXTRACTOR, "path-" + hashlib.sha256(str(path).encode("utf-8")).hexdigest()[:PATH_DIGEST_CHARS])


def public_path(workspace: Workspace, path: Path) -> str:
    """How a local file is named in records: relative to the workspace if inside it, else its name."""
    try:
        return path.resolve().relative_to(workspace.root).as_posix()
    except ValueError:
        return path.name


def harvest_local(ctx: HarvestContext, source: LocalSource) -> Outcome:
    """Take one local file as a source (or skip it if it is already in place)."""
    key = local_key(source.path)
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
        source_id=source_id, extractor=LOCAL_EXTRACTOR, original_id=public_path(ctx.workspace, source.path),
        url=public_path(ctx.workspace, source.path), title=source.path.stem, duration=probe.duration,
        license=USER_PROVIDED_LICENSE, audio_path=ctx.workspace.relative(audio), sha256=sha256)
    record_path = write_source_record(ctx.workspace, record)
    ctx.journal.mark_done(source_unit(source_id), LOCAL_PARAMS, files=[audio], hashed=[record_path],
                          extra={"extractor": key[0], "id": key[1], "seconds": probe.duration or 0.0})
    ctx.catalog.add(record, key)
    ctx.log.info(f"added {source_id}: {source.path} ({probe.codec}, {probe.duration or 0:.1f} s)")
    return Outcome(Status.DOWNLOADED, source.label, source_id, "local file")
