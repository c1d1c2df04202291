"""Source records on disk: one ``sources/<id>.json`` each, plus ``sources/manifest.jsonl``.

The per-source JSON is what the journal's DONE line vouches for; the manifest
(one SourceRecord per line, sorted by id) is rebuilt atomically at the end of
every run so it always matches the records, whatever a killed run left.
"""

from __future__ import annotations

import json
from pathlib import Path

from whcore.atomic import write_text
from whcore.records import SourceRecord
from whcore.workspace import Workspace

MANIFEST_NAME = "manifest.jsonl"


def manifest_path(workspace: Workspace) -> Path:
    return workspace.sources_dir / MANIFEST_NAME


def write_source_record(workspace: Workspace, record: SourceRecord) -> Path:
    """Write ``sources/<id>.json`` atomically; returns its path."""
    path = workspace.source_record_path(record.source_id)
    write_text(path, json.dumps(record.to_dict(), ensure_ascii=False, indent=1) + "\n")
    return path


def read_source_record(path: Path) -> SourceRecord:
    return SourceRecord.read(path)


def load_source_records(workspace: Workspace) -> list[SourceRecord]:
    """Every readable source record of the workspace, sorted by id."""
    if not workspace.sources_dir.is_dir():
        return []
    records = []
    for path in sorted(workspace.sources_dir.glob("*.json")):
        try:
            records.append(read_source_record(path))
        except (OSError, ValueError, TypeError):
            continue  # a record a killed run never finished is not a source
    return records


def rebuild_manifest(workspace: Workspace, done_ids: set[str]) -> Path:
    """Rewrite ``sources/manifest.jsonl`` from the records of finished sources.

    An unchanged manifest is left alone, so a rerun that adds nothing keeps its mtime.
    """
    rows = [record.to_dict() for record in load_source_records(workspace) if record.source_id in done_ids]
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path = manifest_path(workspace)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text(path, text)
    return path
