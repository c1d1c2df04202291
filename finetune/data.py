"""The training data: our Parquet shards, any audiofolder, or a CSV.

Everything is checked before a model is loaded, so a bad dataset costs one
clear line, not a crash an hour into training. Rows are kept column by column
(``ExampleTable``) with what packing needs (source, start, end, duration);
audio is only decoded when a batch is built. Of Parquet shards only the metadata
columns are read up front (durations come from start and end, never from the
audio), and a shard that cannot be read is named in one line and left out.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from finetune.audio import audio_seconds, use_returning_pool
from finetune.table import Example, ExampleTable, TableBuilder
from whcore.atomic import read_jsonl
from whcore.errors import UserError

SPLITS = ("train", "test")
TEXT_COLUMNS = ("transcription", "sentence", "text")  # first one present is the text
METADATA_NAMES = ("metadata.csv", "metadata.jsonl")
CSV_HOLDOUT_FRACTION = 0.1  # test share when a hand-written CSV has no split column
SHARDS_MANIFEST = "shards.json"  # label's Parquet dataset: which shard holds which split


@dataclass(frozen=True)
class DatasetInput:
    """The validated dataset: examples per split and what the model card needs."""

    path: Path
    splits: dict[str, ExampleTable]
    language: str | None  # most common value of a ``language`` column, if any
    card: Path | None  # the dataset's README.md, for attribution
    digest: str  # changes when any row (file, text, times) changes
    problems: tuple[str, ...] = ()  # one line per shard left out because it cannot be read

    def hours(self, split: str) -> float:
        return self.splits[split].seconds() / 3600.0

    def source_ids(self, split: str | None = None) -> list[str]:
        splits = [split] if split else list(self.splits)
        return sorted(set().union(*(self.splits[s].source_ids() for s in splits)))


def load_dataset_input(path: Path) -> DatasetInput:
    """Read and validate ``path`` (audiofolder folder or CSV); UserError on any problem."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise UserError(f"dataset {path} does not exist: run `python -m label` to build "
                        "<workspace>/dataset, or pass --dataset DIR|FILE.csv")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise UserError(f"dataset {path} is a file but not a .csv; pass an audiofolder "
                            "folder or a CSV with columns audio,sentence")
        return _load_csv(path)
    if (path / SHARDS_MANIFEST).is_file():
        return _load_parquet(path)
    return _load_audiofolder(path)


def _load_audiofolder(folder: Path) -> DatasetInput:
    rows = _read_metadata(folder)
    if not rows:
        raise UserError(f"dataset {folder} is empty (no metadata.csv/metadata.jsonl rows): "
                        "run `python -m label` first or pass --dataset DIR")
    files = [(base / r["file_name"], r) for base, r in rows]
    _check_files(folder, files)
    for split in SPLITS:
        if not any(_split_of(folder, path) == split for path, _ in files):
            raise UserError(f"dataset {folder}: the {split} split has no rows; put rows in "
                            f"{folder / split}/metadata.csv")
    splits = _audiofolder_splits(folder)
    language = _common_value([r.get("language", "") for _, r in rows])
    card = folder / "README.md"
    return _finish(folder, splits, language, card if card.is_file() else None)


def _read_metadata(folder: Path) -> list[tuple[Path, dict]]:
    """(folder of the metadata file, row) for every metadata row under ``folder``."""
    rows: list[tuple[Path, dict]] = []
    for name in METADATA_NAMES:
        for meta in sorted(folder.rglob(name)):
            for row in _metadata_rows(meta):
                if "file_name" not in row:
                    raise UserError(f"{meta} has no file_name column; audiofolder metadata "
                                    "needs file_name plus a text column")
                rows.append((meta.parent, row))
    return rows


def _metadata_rows(meta: Path) -> list[dict]:
    if meta.suffix == ".jsonl":
        return read_jsonl(meta)
    with open(meta, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _check_files(where: Path, files: list[tuple[Path, dict]]) -> None:
    missing = [str(p) for p, _ in files if not p.is_file()]
    if missing:
        raise UserError(f"dataset {where}: {len(missing)} audio file(s) do not exist, first "
                        f"{missing[0]}; fix the paths or rebuild the dataset")


def _split_of(folder: Path, path: Path) -> str:
    """The split ``datasets`` puts a file in: its top folder name, else train."""
    parts = Path(os.path.abspath(path)).relative_to(folder).parts  # links stay inside folder
    return parts[0] if len(parts) > 1 and parts[0] in SPLITS else "train"


def _audiofolder_splits(folder: Path) -> dict[str, ExampleTable]:
    """Load through ``datasets`` (the contract users rely on), audio left undecoded."""
    import datasets

    datasets.disable_progress_bars()
    try:
        loaded = datasets.load_dataset("audiofolder", data_dir=str(folder))
    except (ValueError, FileNotFoundError, datasets.exceptions.DatasetGenerationError) as exc:
        raise UserError(f"dataset {folder} does not load as an audiofolder "
                        f"({str(exc).splitlines()[0][:200]}); check metadata.csv") from None
    splits: dict[str, ExampleTable] = {}
    for split in SPLITS:
        if split not in loaded:
            continue
        table = loaded[split].cast_column("audio", datasets.Audio(decode=False))
        text_column = _text_column(table.column_names, folder)
        splits[split] = ExampleTable.of(_example(Path(row["audio"]["path"]), row, text_column, split, i)
                                        for i, row in enumerate(table))
    return splits


def _text_column(columns: list[str], where: Path) -> str:
    for name in TEXT_COLUMNS:
        if name in columns:
            return name
    raise UserError(f"dataset {where} has no text column (one of {', '.join(TEXT_COLUMNS)}); "
                    f"columns are {', '.join(columns)}")


def _example(audio: Path, row: dict, text_column: str, split: str, index: int) -> Example:
    source_id = str(row.get("source_id") or "") or f"{split}-row{index}"
    return Example(audio_path=audio, text=str(row.get(text_column) or "").strip(), split=split,
                   source_id=source_id, start=_float_or_none(row.get("start")),
                   end=_float_or_none(row.get("end")), duration=audio_seconds(audio))


def _float_or_none(value: object) -> float | None:
    try:
        return None if value in (None, "") else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _load_parquet(folder: Path) -> DatasetInput:
    """Examples from the shards ``shards.json`` lists (metadata columns only; audio and texts
    stay on disk: each row keeps its text's length, and its text is read with its audio)."""
    use_returning_pool()  # these reads and training's: finetune.audio says why
    try:
        shards = json.loads((folder / SHARDS_MANIFEST).read_text(encoding="utf-8"))["shards"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"dataset {folder}: {SHARDS_MANIFEST} is unreadable ({error}); rerun `python -m label`") \
            from None
    builders: dict[str, TableBuilder] = {s: TableBuilder(keep_text=False) for s in SPLITS}
    problems, languages, digest = [], Counter(), hashlib.sha256()
    in_split_order = sorted(shards, key=lambda shard: _split_rank(shard.get("split")))  # the digest's row order
    for shard in in_split_order:
        path, split = folder / str(shard.get("file", "")), str(shard.get("split"))
        try:
            columns = _shard_columns(path, split)
        except (OSError, ValueError, KeyError, TypeError) as error:  # pyarrow's ArrowInvalid is a ValueError
            problems.append(f"dataset shard {path} cannot be read ({str(error).splitlines()[0][:160]}): "
                            "left out; rerun `python -m label` to rebuild it")
            continue
        _add_shard(builders[split], path, split, columns, digest)
        languages.update(language for language in columns["language"] if language)
    card = folder / "README.md"
    language = languages.most_common(1)[0][0] if languages else None
    result = _finish(folder, {s: b.table() for s, b in builders.items()}, language,
                     card if card.is_file() else None, digest.hexdigest()[:16])
    return dataclasses.replace(result, problems=tuple(problems))


def _split_rank(split: object) -> int:
    return SPLITS.index(split) if split in SPLITS else len(SPLITS)


def _shard_columns(path: Path, split: str) -> dict[str, list]:
    """One shard's metadata columns as lists, audio left unread; ``group`` and ``position``
    say where each row's audio is. Read whole before any row is kept, so a shard that
    breaks halfway adds nothing; read a row group at a time, which leaves Arrow's memory
    pool ~10 MB smaller than one read of the whole shard (measured on a 500 MB shard)."""
    import pyarrow.parquet as pq

    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not train or test")
    shard = pq.ParquetFile(str(path))
    present = set(shard.schema_arrow.names)
    names = [c for c in ("start", "end", "source_id", "transcription", "language") if c in present]
    columns: dict[str, list] = {name: [] for name in ("start", "end", "source_id", "transcription", "language",
                                                      "group", "position")}
    for group in range(shard.num_row_groups):
        table = shard.read_row_group(group, columns=names)
        for name in ("start", "end", "source_id"):
            columns[name] += table.column(name).to_pylist()
        for name in ("transcription", "language"):
            columns[name] += table.column(name).to_pylist() if name in present else [None] * table.num_rows
        columns["group"] += [group] * table.num_rows
        columns["position"] += range(table.num_rows)
    return columns


def _add_shard(builder: TableBuilder, path: Path, split: str, columns: dict[str, list], digest: Any) -> None:
    """Add a shard's rows that have text (as ``_finish`` keeps them), each in ``digest`` as ``_finish``
    would digest it."""
    for start, end, source, text, group, position in zip(
            columns["start"], columns["end"], columns["source_id"], columns["transcription"],
            columns["group"], columns["position"]):
        start, end, text, source = float(start), float(end), str(text or "").strip(), str(source)
        if text:
            builder.add_row(path, text, split, source, start, end, end - start, (group, position))
            digest.update(_digest_line(split, f"{path.name}#{group}.{position}", text, source, start, end))


def _load_csv(path: Path) -> DatasetInput:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    text_column = next((c for c in TEXT_COLUMNS if c in columns), None)
    if "audio" not in columns or text_column is None:
        raise UserError(f"CSV {path} needs columns audio,sentence (has: {', '.join(columns) or 'none'})")
    if not rows:
        raise UserError(f"CSV {path} has no rows; add lines of audio,sentence")
    files = [((path.parent / r["audio"]).resolve(), r) for r in rows]
    _check_files(path, files)
    splits: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for index, (audio, row) in enumerate(files):
        split = row.get("split") or _holdout_split(row["audio"], len(rows))
        if split not in SPLITS:
            raise UserError(f"CSV {path}: split {split!r} in row {index + 2} is not train or test")
        splits[split].append(_example(audio, row, text_column, split, index))
    if not splits["test"] and "split" not in columns and len(rows) > 1:
        splits["test"].append(splits["train"].pop())
    return _finish(path, splits, _common_value([r.get("language", "") for r in rows]), None)


def _holdout_split(name: str, count: int) -> str:
    """Stable train/test choice from the file name, so reruns and resumes agree."""
    if count < 2:
        return "train"
    bucket = zlib.crc32(name.encode("utf-8")) % 1000
    return "test" if bucket < CSV_HOLDOUT_FRACTION * 1000 else "train"


def _finish(path: Path, rows: dict[str, list[Example] | ExampleTable], language: str | None,
            card: Path | None, digest: str | None = None) -> DatasetInput:
    """Check the splits, drop rows without text, and digest the rows (``digest``: done as they were read)."""
    splits: dict[str, ExampleTable] = {}
    for split in SPLITS:
        table = ExampleTable.of(rows.get(split, []))
        texted = table.text_sizes > 0  # texts are stripped when read
        if not texted.any():
            fix = "label more audio" if split == "train" else "put some rows in the test split"
            raise UserError(f"dataset {path}: the {split} split has no rows with text; {fix}")
        splits[split] = table if texted.all() else table.select(np.flatnonzero(texted))
    if digest is None:
        hasher = hashlib.sha256()
        for split in SPLITS:
            for e in splits[split]:
                where = e.audio_path.name if e.row is None else f"{e.audio_path.name}#{e.row[0]}.{e.row[1]}"
                hasher.update(_digest_line(split, where, e.text, e.source_id, e.start, e.end))
        digest = hasher.hexdigest()[:16]
    return DatasetInput(path=path, splits={s: splits[s] for s in SPLITS}, language=language,
                        card=card, digest=digest)


def _digest_line(split: str, where: str, text: str, source_id: str, start: float | None, end: float | None) -> bytes:
    """One row's part of the dataset digest (what resumes a finetune run compare)."""
    return f"{split}|{where}|{text}|{source_id}|{start}|{end}\n".encode("utf-8")


def _common_value(values: list[str]) -> str | None:
    counts = Counter(v for v in values if v)
    return counts.most_common(1)[0][0] if counts else None
