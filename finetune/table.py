"""The rows finetune trains on, held column by column.

A list of one Python object per window cost ~420 bytes a row (a float object
per time, a tuple per row position, a string object per text), so finetune's
memory grew 23 % from a 10 h to a 100 h corpus. ``ExampleTable`` keeps the
same rows as numpy columns and each distinct file, source and split once. Rows
of Parquet shards keep no text either (a 10 s window's is ~150 bytes, 0.7 GB
at 10,000 h): it is read from the shard with the row, as the audio is. Other
inputs (audiofolder, CSV: small corpora) keep theirs in one UTF-8 buffer. An
``Example`` is made only when a row is read (a batch, a test), one at a time.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import numpy as np

NO_ROW = -1  # row group / position of a row that is a whole file, not a Parquet row


@dataclass(frozen=True, slots=True)
class Example:
    """One row: an audio file and its text, with where it came from."""

    audio_path: Path
    text: str
    split: str
    source_id: str  # rows without one get a unique id (nothing to overlap with)
    start: float | None  # seconds in the source, if known
    end: float | None
    duration: float  # seconds of audio in the file
    row: tuple[int, int] | None = None  # (row group, position) when ``audio_path`` is a Parquet shard


class _Codes:
    """Distinct values numbered in the order first seen."""

    def __init__(self) -> None:
        self.values: list = []
        self.numbers: dict = {}

    def code(self, value: object) -> int:
        number = self.numbers.get(value)
        if number is None:
            number = self.numbers[value] = len(self.values)
            self.values.append(value)
        return number


class TableBuilder:
    """Collects rows into compact typed arrays; ``table()`` freezes them. With ``keep_text``
    False only each text's length is kept (rows of Parquet shards, whose texts are read back)."""

    def __init__(self, keep_text: bool = True) -> None:
        self.keep_text = keep_text
        self.files, self.sources, self.splits = _Codes(), _Codes(), _Codes()
        self.file_codes, self.source_codes = array("i"), array("i")
        self.split_codes = array("b")
        self.groups, self.positions = array("i"), array("i")
        self.starts, self.ends, self.durations = array("d"), array("d"), array("d")
        self.text = bytearray()
        self.text_sizes = array("i")

    def add(self, example: Example) -> None:
        self.add_row(example.audio_path, example.text, example.split, example.source_id,
                     example.start, example.end, example.duration, example.row)

    def add_row(self, audio_path: Path, text: str, split: str, source_id: str, start: float | None,
                end: float | None, duration: float, row: tuple[int, int] | None = None) -> None:
        self.file_codes.append(self.files.code(audio_path))
        self.source_codes.append(self.sources.code(source_id))
        self.split_codes.append(self.splits.code(split))
        self.groups.append(NO_ROW if row is None else row[0])
        self.positions.append(NO_ROW if row is None else row[1])
        self.starts.append(math.nan if start is None else start)
        self.ends.append(math.nan if end is None else end)
        self.durations.append(duration)
        encoded = text.encode("utf-8")
        self.text_sizes.append(len(encoded))
        if self.keep_text:
            self.text += encoded

    def table(self) -> ExampleTable:
        return ExampleTable(
            files=tuple(self.files.values), sources=tuple(self.sources.values), splits=tuple(self.splits.values),
            file_codes=np.frombuffer(self.file_codes, np.int32), source_codes=np.frombuffer(self.source_codes, np.int32),
            split_codes=np.frombuffer(self.split_codes, np.int8), groups=np.frombuffer(self.groups, np.int32),
            positions=np.frombuffer(self.positions, np.int32), starts=np.frombuffer(self.starts, np.float64),
            ends=np.frombuffer(self.ends, np.float64), durations=np.frombuffer(self.durations, np.float64),
            text_sizes=np.frombuffer(self.text_sizes, np.int32), text=bytes(self.text) if self.keep_text else None)


T = TypeVar("T")


class Rows(Sequence[T]):
    """A sequence whose items are made from row ``i`` when read (``_row``): indexing with
    negatives and slices, bounds checked, iteration."""

    def _row(self, i: int) -> T:
        raise NotImplementedError

    def __getitem__(self, index: int) -> T:  # type: ignore[override]
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(len(self)))]  # type: ignore[return-value]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._row(int(index))

    def __iter__(self) -> Iterator[T]:
        return (self._row(i) for i in range(len(self)))


@dataclass(frozen=True, eq=False)
class ExampleTable(Rows[Example]):
    """Rows as columns; indexing and iterating give ``Example`` records.

    ``*_codes`` index ``files`` / ``sources`` / ``splits``; a time is NaN where
    unknown and a row group NO_ROW where the row is a whole file. ``text`` holds
    the rows' UTF-8 texts back to back (``text_sizes`` bytes each), or is None:
    each is read from its Parquet shard when the row is.
    """

    files: tuple[Path, ...]
    sources: tuple[str, ...]
    splits: tuple[str, ...]
    file_codes: np.ndarray
    source_codes: np.ndarray
    split_codes: np.ndarray
    groups: np.ndarray
    positions: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    durations: np.ndarray
    text_sizes: np.ndarray
    text: bytes | None

    @classmethod
    def of(cls, examples: Iterable[Example]) -> ExampleTable:
        """A table of ``examples`` (itself if it is one)."""
        if isinstance(examples, ExampleTable):
            return examples
        builder = TableBuilder()
        for example in examples:
            builder.add(example)
        return builder.table()

    def __len__(self) -> int:
        return len(self.durations)

    def _row(self, i: int) -> Example:
        start, end, group = float(self.starts[i]), float(self.ends[i]), int(self.groups[i])
        return Example(audio_path=self.files[self.file_codes[i]], text=self.text_of(i),
                       split=self.splits[self.split_codes[i]], source_id=self.sources[self.source_codes[i]],
                       start=None if math.isnan(start) else start, end=None if math.isnan(end) else end,
                       duration=float(self.durations[i]), row=None if group == NO_ROW else (group, int(self.positions[i])))

    def text_of(self, i: int) -> str:
        if self.text is None:
            from finetune.audio import shard_text

            return shard_text(self.files[self.file_codes[i]], int(self.groups[i]), int(self.positions[i]))
        end = int(self._text_ends[i])
        return self.text[end - int(self.text_sizes[i]):end].decode("utf-8")

    @cached_property
    def _text_ends(self) -> np.ndarray:
        return np.cumsum(self.text_sizes, dtype=np.int64)

    def select(self, indices: np.ndarray) -> ExampleTable:
        """The rows at ``indices``, in that order (codes and their value lists kept as they are)."""
        indices = np.asarray(indices, dtype=np.int64)
        text = None
        if self.text is not None:
            ends = self._text_ends[indices]
            buffer, view = bytearray(), memoryview(self.text)
            for first, end in zip((ends - self.text_sizes[indices]).tolist(), ends.tolist()):  # no bytes per row kept
                buffer += view[first:end]
            text = bytes(buffer)
        return ExampleTable(files=self.files, sources=self.sources, splits=self.splits,
                            file_codes=self.file_codes[indices], source_codes=self.source_codes[indices],
                            split_codes=self.split_codes[indices], groups=self.groups[indices],
                            positions=self.positions[indices], starts=self.starts[indices], ends=self.ends[indices],
                            durations=self.durations[indices], text_sizes=self.text_sizes[indices], text=text)

    def source_ids(self) -> set[str]:
        return {self.sources[code] for code in np.unique(self.source_codes).tolist()}

    def seconds(self) -> float:
        return float(self.durations.sum())
