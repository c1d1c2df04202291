"""The dataset as sharded Parquet, rebuilt incrementally: what a 10,000-hour corpus needs.

Layout::

    dataset/README.md                       card; its YAML ``configs`` lists every shard by name
    dataset/shards.json                     which sources (and their rows' digest) each shard holds
    dataset/data/train-<digest>.parquet     whole sources, up to ~500 MB per shard
    dataset/data/test-<digest>.parquet

Each row embeds its window as a small FLAC file (the ``datasets`` ``Audio`` feature,
``{"bytes", "path"}``, the form ``push_to_hub`` uploads) beside every metadata and
quality column, so ``load_dataset("<workspace>/dataset")`` (also with
``streaming=True``) needs nothing but the folder, and the Hub takes the shards as
they are: thousands of files instead of one per window.

A shard holds whole sources, so a rebuild re-encodes only the sources whose rows
changed, and the shards they shared: every other shard is hard-linked from the
previous build, unchanged. New sources first fill the split's shards smaller than
half the target (their row groups are copied, not re-encoded), so a corpus that
grows a source at a time keeps shards of ~500 MB. The whole folder is still published in one step
(``whcore.publish.publish_folder``), and the card names its shards explicitly, so
a reader never sees a half-written or leftover shard.

Row groups hold ``ROW_GROUP_ROWS`` windows (about 2.5 MB), so finetune can read a
random window without reading a whole shard; the audio column is stored
uncompressed (FLAC bytes do not compress further, so zstd would only cost time).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from label.dataset import link_or_copy
from label.split import TEST, TRAIN, assign_splits
from whcore.errors import SourceError
from whcore.records import SAMPLE_RATE, LabelRecord
from whcore.window_audio import WindowReader, flac_bytes
from whcore.workspace import Workspace

SHARD_TARGET_BYTES = 500 * 2 ** 20  # close a shard at the first source boundary past 500 MB, as `datasets` shards
ROW_GROUP_ROWS = 16  # 16 windows of 10 s = about 2.5 MB of FLAC: one random read in finetune costs that much
DATA_DIR = "data"
MANIFEST_NAME = "shards.json"
MANIFEST_FORMAT = 1
FLOAT_COLUMNS = ("language_prob", "avg_logprob", "mean_word_prob", "min_word_prob", "no_speech_prob",
                 "compression_ratio", "chars_per_second", "speech_ratio", "reference_cer")
ROW_ROUNDING = 4  # decimals of the quality columns, as in the audiofolder metadata.csv


@dataclass(frozen=True)
class Shard:
    """One Parquet file of the dataset: a split's whole sources."""

    file: str  # relative to the dataset folder, e.g. data/train-0123abcd.parquet
    split: str
    sources: dict[str, str]  # source id -> digest of its rows (what decides reuse)
    rows: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "split": self.split, "sources": self.sources, "rows": self.rows,
                "seconds": self.seconds}


@dataclass(frozen=True)
class ShardBuild:
    """What one build wrote: every shard, how many it reused, and sources it had to leave out."""

    shards: list[Shard]
    reused: int
    written: int
    failed: dict[str, str]  # source id -> why its audio could not be read


def arrow_schema() -> Any:
    """The Arrow schema of a row, with the ``datasets`` features in its metadata as ``datasets``
    writes them (``Features.arrow_schema``), so loaders decode ``audio`` as Audio without the card.

    Written by hand because importing ``datasets`` costs seconds on every rebuild.
    """
    import pyarrow as pa

    types = {"transcription": ("string", pa.string()), "source_id": ("string", pa.string()),
             "index": ("int32", pa.int32()), "start": ("float64", pa.float64()), "end": ("float64", pa.float64()),
             "language": ("string", pa.string())}
    types.update({name: ("float64", pa.float64()) for name in FLOAT_COLUMNS})
    features = {"audio": {"sampling_rate": SAMPLE_RATE, "_type": "Audio"}}
    features.update({name: {"dtype": dtype, "_type": "Value"} for name, (dtype, _) in types.items()})
    fields = [pa.field("audio", pa.struct([("bytes", pa.binary()), ("path", pa.string())]))]
    fields += [pa.field(name, arrow) for name, (_, arrow) in types.items()]
    metadata = {"huggingface": json.dumps({"info": {"features": features}})}
    return pa.schema(fields, metadata=metadata)


def metadata_row(record: LabelRecord) -> dict[str, Any]:
    """A row's columns other than its audio."""
    row: dict[str, Any] = {"transcription": record.text, "source_id": record.source_id, "index": record.index,
                           "start": record.start, "end": record.end,  # exact: samples / 16000
                           "language": record.language}
    for name in FLOAT_COLUMNS:
        value = getattr(record, name)
        row[name] = None if value is None else round(float(value), ROW_ROUNDING)
    return row


def audio_name(record: LabelRecord) -> str:
    """The name a window's embedded FLAC carries: ``<source_id>_<start_ms>_<end_ms>.flac``."""
    return f"{record.source_id}_{round(record.start * 1000)}_{round(record.end * 1000)}.flac"


def source_digest(split_of: dict[int, str], records: Sequence[LabelRecord]) -> str:
    """Digest of everything a source's rows hold, so an unchanged source keeps its shard."""
    digest = hashlib.sha256()
    for record in records:
        key = {"split": split_of[record.index], "row": metadata_row(record), "path": record.path,
               "offset": record.offset}
        digest.update(json.dumps(key, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:16]


def read_manifest(dataset_dir: Path) -> list[Shard]:
    """The shards of the published dataset; empty if there is none (or an audiofolder)."""
    try:
        data = json.loads((dataset_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        return [Shard(s["file"], s["split"], dict(s["sources"]), int(s["rows"]), float(s["seconds"]))
                for s in data["shards"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def manifest_text(shards: Sequence[Shard]) -> str:
    return json.dumps({"format": MANIFEST_FORMAT, "shards": [s.to_dict() for s in shards]}, indent=1) + "\n"


def plan_sources(kept: Sequence[LabelRecord], test_fraction: float) -> dict[str, dict[str, list[LabelRecord]]]:
    """split -> source id -> its rows in (start, index) order, the time-split gap left out."""
    splits = assign_splits(kept, test_fraction)
    plan: dict[str, dict[str, list[LabelRecord]]] = {TRAIN: {}, TEST: {}}
    for record in sorted(kept, key=lambda r: (r.source_id, r.start, r.index)):
        split = splits.get((record.source_id, record.index))
        if split is not None:
            plan[split].setdefault(record.source_id, []).append(record)
    return plan


def write_shards(workspace: Workspace, folder: Path, kept: Sequence[LabelRecord], test_fraction: float,
                 previous_dir: Path, log: Any) -> ShardBuild:
    """Shards of both splits under ``folder``: reused from ``previous_dir`` where their sources are unchanged."""
    plan = plan_sources(kept, test_fraction)
    digests = {split: {sid: source_digest({r.index: split for r in rows}, rows) for sid, rows in sources.items()}
               for split, sources in plan.items()}
    unchanged: list[Shard] = []
    for shard in read_manifest(previous_dir):
        wanted = digests.get(shard.split, {})
        if shard.sources and all(wanted.get(sid) == d for sid, d in shard.sources.items()) \
                and (previous_dir / shard.file).is_file():
            unchanged.append(shard)
    covered = {(shard.split, sid) for shard in unchanged for sid in shard.sources}
    pending = {split: [sid for sid in sorted(plan[split]) if (split, sid) not in covered] for split in plan}
    # A split that gets new sources fills its small shards first (their rows are copied, not
    # re-encoded), so a corpus that grows a source at a time still has shards of ~500 MB.
    carried = [s for s in unchanged if pending[s.split]
               and (previous_dir / s.file).stat().st_size < SHARD_TARGET_BYTES // 2]
    shards: list[Shard] = []
    for shard in unchanged:
        if shard not in carried:
            link_or_copy(previous_dir / shard.file, folder / shard.file)
            shards.append(shard)
    reused, written = len(shards), 0
    failed: dict[str, str] = {}
    for split in (TRAIN, TEST):
        old = [(previous_dir / s.file, s) for s in carried if s.split == split]
        for shard in _write_new_shards(workspace, folder, split, pending[split], old, plan[split], digests[split],
                                       failed, log):
            shards.append(shard)
            written += 1
    return ShardBuild(sorted(shards, key=lambda s: (s.split != TRAIN, s.file)), reused, written, failed)


def _write_new_shards(workspace: Workspace, folder: Path, split: str, pending: Sequence[str],
                      carried: Sequence[tuple[Path, Shard]], rows_of: dict[str, list[LabelRecord]],
                      digests: dict[str, str], failed: dict[str, str], log: Any) -> Iterable[Shard]:
    """Shards of about ``SHARD_TARGET_BYTES``: the rows of the ``carried`` shards copied as they are,
    then the ``pending`` sources encoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema()
    (folder / DATA_DIR).mkdir(parents=True, exist_ok=True)
    writer, tmp, members, rows, seconds = None, folder / DATA_DIR / f".tmp-{os.getpid()}-{split}.parquet", {}, 0, 0.0
    pending = list(pending)
    for path, shard in carried:
        if writer is None:
            writer = _new_writer(tmp, schema, pq)
        try:
            _copy_row_groups(path, writer, pq)
        except (OSError, ValueError) as error:  # the old shard is damaged: encode its sources again
            log.warning(f"dataset: shard {path.name} unreadable ({error}); re-encoding its sources")
            writer.close()
            writer = _without_sources(tmp, set(shard.sources), schema, pq) if members else None
            pending = sorted(set(pending) | set(shard.sources))
            continue
        members.update(shard.sources)
        rows += shard.rows
        seconds += shard.seconds
    for sid in pending:
        if writer is None:
            writer = _new_writer(tmp, schema, pq)
        try:
            for table in _source_tables(workspace, rows_of[sid], schema, pa):
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        except SourceError as error:
            failed[sid] = str(error)
            log.error(f"dataset: {sid} left out: {error}")
            writer.close()
            writer = _without_sources(tmp, {sid}, schema, pq) if members else None
            continue
        members[sid] = digests[sid]
        rows += len(rows_of[sid])
        seconds += sum(r.end - r.start for r in rows_of[sid])
        if tmp.stat().st_size >= SHARD_TARGET_BYTES:
            writer.close()
            writer = None
            yield _seal(folder, tmp, split, members, rows, seconds)
            members, rows, seconds = {}, 0, 0.0
    if writer is not None:
        writer.close()
        if members:
            yield _seal(folder, tmp, split, members, rows, seconds)
    tmp.unlink(missing_ok=True)


def _source_tables(workspace: Workspace, records: Sequence[LabelRecord], schema: Any, pa: Any) -> Iterable[Any]:
    """A source's rows as Arrow tables of ``ROW_GROUP_ROWS`` rows, audio encoded as FLAC, in order."""
    with WindowReader(workspace) as reader:
        for first in range(0, len(records), ROW_GROUP_ROWS):
            batch = records[first:first + ROW_GROUP_ROWS]
            rows = []
            for record, samples in zip(batch, reader.read_many(batch, dtype="int16")):
                audio = {"bytes": flac_bytes(samples), "path": audio_name(record)}
                rows.append({"audio": audio, **metadata_row(record)})
            yield pa.Table.from_pylist(rows, schema=schema)


def _new_writer(path: Path, schema: Any, pq: Any) -> Any:
    compression = {name: "zstd" for name in schema.names} | {"audio": "none"}
    return pq.ParquetWriter(str(path), schema, compression=compression, use_dictionary=["source_id", "language"])


def _copy_row_groups(path: Path, writer: Any, pq: Any) -> None:
    """Every row group of the shard ``path`` into ``writer``, one at a time (no audio re-encoded)."""
    shard = pq.ParquetFile(str(path))
    try:
        for group in range(shard.num_row_groups):
            writer.write_table(shard.read_row_group(group), row_group_size=ROW_GROUP_ROWS)
    finally:
        shard.close()


def _without_sources(tmp: Path, source_ids: set[str], schema: Any, pq: Any) -> Any:
    """An open writer holding the shard so far minus the row groups of ``source_ids`` (one failed midway).

    Every row group holds one source's rows, so the copy goes row group by row group
    (bounded memory); ParquetWriter cannot reopen a file to append, hence the copy.
    """
    done = pq.ParquetFile(str(tmp))
    copy = tmp.with_name(tmp.name + ".next")
    writer = _new_writer(copy, schema, pq)
    for group in range(done.num_row_groups):
        table = done.read_row_group(group)
        if table.num_rows and table.column("source_id")[0].as_py() not in source_ids:
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
    done.close()
    os.replace(copy, tmp)  # the writer holds the file open: it goes on writing under the new name
    return writer


def _seal(folder: Path, tmp: Path, split: str, members: dict[str, str], rows: int, seconds: float) -> Shard:
    """Name the finished shard by its content (its sources and their digests) and move it there."""
    name = hashlib.sha256(json.dumps(members, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    relative = f"{DATA_DIR}/{split}-{name}.parquet"
    os.replace(tmp, folder / relative)
    return Shard(relative, split, dict(members), rows, round(seconds, 3))


def card_configs(shards: Sequence[Shard]) -> list[str]:
    """YAML lines that tell ``load_dataset`` exactly which files make each split (no globbing)."""
    lines = ["configs:", "- config_name: default", "  data_files:"]
    for split in (TRAIN, TEST):
        files = [s.file for s in shards if s.split == split]
        if files:
            lines += [f"  - split: {split}", "    path:"] + [f"    - {f}" for f in files]
    return lines
