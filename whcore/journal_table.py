"""The latest journal line per unit of one stage, kept in columns.

A rerun or ``python -m status`` over 100k units asks, per unit, only for the params
digest and the files a DONE line listed (and, for status, a few extras and the
options). Holding one Python object per line, with three dicts each, made loading
the parsed journal cost more than parsing it: here each field is one list indexed
by row, a row's files are one flat tuple, and its extras and options are a tuple of
values beside the tuple of their keys (shared by every row with the same keys).
A ``DoneEntry`` is built only for the units a caller looks at.

Everything held is a builtin (str, int, float, None, list, tuple, dict), so the
index beside the log can be a pickle that constructs no class at all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from operator import itemgetter
from typing import Any

FILE_FIELDS = 4  # a listed file in a row's flat files tuple: relpath, size_bytes, sha256 | None, mtime_ns | None


@dataclass(frozen=True)
class DoneEntry:
    """One finished unit as recorded in the journal."""

    stage: str
    unit: str
    params: str  # params_digest of the options used
    files: dict[str, list] = field(default_factory=dict)  # relpath -> [size_bytes, sha256 | None(, mtime_ns)]
    extra: dict[str, Any] = field(default_factory=dict)  # stage-specific facts (counts, seconds, ...)
    options: dict[str, Any] | None = None  # the options in clear; None on format-1 lines
    time: str = ""  # when it was written, as in the line

    def extra_value(self, key: str, default: Any = None) -> Any:
        """``extra.get(key, default)``, without building ``extra`` for a row entry."""
        return self.extra.get(key, default)

    def option_value(self, key: str, default: Any = None) -> Any:
        """``options.get(key, default)`` (default for format-1 lines), without building ``options``."""
        return default if self.options is None else self.options.get(key, default)


@dataclass(frozen=True)
class OutcomeEntry:
    """A unit that ended without output: FAILED, REJECTED or SKIPPED (by a rule), with why."""

    stage: str
    unit: str
    outcome: str  # FAILED_LEVEL, REJECTED_LEVEL or SKIPPED_LEVEL
    reason: str
    time: str = ""


def flat_files(files: Mapping[str, list]) -> tuple:
    """A DONE entry's files as one flat tuple of FILE_FIELDS values per file."""
    flat: list[Any] = []
    for relative, recorded in files.items():
        flat += (relative, recorded[0], recorded[1], recorded[2] if len(recorded) > 2 else None)
    return tuple(flat)


def files_dict(flat: tuple) -> dict[str, list]:
    """The inverse of ``flat_files``: relpath -> [size, sha256(, mtime_ns)] as the line wrote it."""
    return {flat[i]: [flat[i + 1], flat[i + 2]] if flat[i + 3] is None else [flat[i + 1], flat[i + 2], flat[i + 3]]
            for i in range(0, len(flat), FILE_FIELDS)}


def flat_contents(flat: tuple) -> dict[str, list]:
    """A flat listing's files as size and sha256 only (``content_listing`` of its entry)."""
    return {flat[i]: [flat[i + 1], flat[i + 2]] for i in range(0, len(flat), FILE_FIELDS)}


def _shared(value: Any, shapes: dict[tuple, Any]) -> Any:
    """One object for equal option values of many rows (label's nested filter thresholds, the
    model name): the index pickle then stores and loads each once, not once per unit (at 100k
    units, loading 100k copies of the same dict was most of a rerun's index load)."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, (dict, list)):
        return shapes.setdefault((None, type(value).__name__, repr(value)), value)
    return value


class ValuePicker:
    """The values of some keys from rows whose keys are shared tuples (``StageLog.extra_keys``,
    ``option_keys``), None where a row lacks a key: where each key sits is found once per
    distinct keys tuple, so 100k rows cost an ``itemgetter`` call each, not a search per key."""

    def __init__(self, wanted: tuple[str, ...]) -> None:
        self.wanted = wanted
        self._getters: dict[int, tuple[tuple, Callable[[tuple], tuple]]] = {}  # id(keys) -> keys, getter

    def __call__(self, keys: tuple | None, values: tuple) -> tuple:
        if keys is None:
            return (None,) * len(self.wanted)
        known = self._getters.get(id(keys))
        if known is None or known[0] is not keys:  # the tuple is kept, so its id is not reused
            known = self._getters[id(keys)] = (keys, self._getter(keys))
        return known[1](values)

    def _getter(self, keys: tuple) -> Callable[[tuple], tuple]:
        positions = [keys.index(key) if key in keys else -1 for key in self.wanted]
        if -1 not in positions:
            return tuple_getter(positions)
        return lambda values: tuple(None if p < 0 else values[p] for p in positions)


def tuple_getter(positions: list[int]) -> Callable[[tuple], tuple]:
    """``itemgetter`` that always returns a tuple (it returns a bare value for one position)."""
    if len(positions) > 1:
        return itemgetter(*positions)
    return (lambda values: (values[positions[0]],)) if positions else (lambda values: ())


@dataclass
class StageLog:
    """Latest DONE line and latest outcome line per unit of one stage, one list per field.

    ``seq`` is a line's position among the journal lines, so a unit's DONE and outcome
    rows say which came last. Rows are replaced in place when a unit has a newer line.
    """

    stage: str
    done_row: dict[str, int] = field(default_factory=dict)  # unit -> row in the done_* lists
    done_unit: list[str] = field(default_factory=list)
    done_seq: list[int] = field(default_factory=list)
    done_time: list[str] = field(default_factory=list)
    done_params: list[str] = field(default_factory=list)
    done_files: list[tuple] = field(default_factory=list)  # flat_files of the row
    extra_keys: list[tuple] = field(default_factory=list)  # the row's extra keys (a shared tuple)
    extra_values: list[tuple] = field(default_factory=list)  # their values, in that order
    option_keys: list[tuple | None] = field(default_factory=list)  # None: a format-1 line (digest only)
    option_values: list[tuple] = field(default_factory=list)
    outcome_row: dict[str, int] = field(default_factory=dict)
    outcome_unit: list[str] = field(default_factory=list)
    outcome_seq: list[int] = field(default_factory=list)
    outcome_level: list[str] = field(default_factory=list)
    outcome_reason: list[str] = field(default_factory=list)
    outcome_time: list[str] = field(default_factory=list)

    def add(self, entry: DoneEntry | OutcomeEntry, seq: int, shapes: dict[tuple, tuple]) -> None:
        """Record ``entry`` (the journal line number ``seq``) as its unit's latest of its kind.

        ``shapes`` interns the key tuples, so rows with the same keys share one tuple.
        """
        if isinstance(entry, OutcomeEntry):
            self._put(self.outcome_row, entry.unit, (self.outcome_unit, self.outcome_seq, self.outcome_level,
                                                     self.outcome_reason, self.outcome_time),
                      (entry.unit, seq, entry.outcome, entry.reason, entry.time))
            return
        extra_keys = shapes.setdefault(tuple(entry.extra), tuple(entry.extra))
        options = entry.options
        option_keys = None if options is None else shapes.setdefault(tuple(options), tuple(options))
        option_values = () if options is None else tuple(_shared(value, shapes) for value in options.values())
        self._put(self.done_row, entry.unit,
                  (self.done_unit, self.done_seq, self.done_time, self.done_params, self.done_files,
                   self.extra_keys, self.extra_values, self.option_keys, self.option_values),
                  (entry.unit, seq, entry.time, entry.params, flat_files(entry.files), extra_keys,
                   tuple(entry.extra.values()), option_keys, option_values))

    @staticmethod
    def _put(rows: dict[str, int], unit: str, columns: tuple[list, ...], values: tuple) -> None:
        row = rows.get(unit)
        if row is None:
            rows[unit] = len(columns[0])
            for column, value in zip(columns, values):
                column.append(value)
        else:
            for column, value in zip(columns, values):
                column[row] = value

    def is_consistent(self) -> bool:
        """Whether every done column has one value per done row, and every outcome column per outcome row."""
        done = (self.done_row, self.done_unit, self.done_seq, self.done_time, self.done_params, self.done_files,
                self.extra_keys, self.extra_values, self.option_keys, self.option_values)
        outcome = (self.outcome_row, self.outcome_unit, self.outcome_seq, self.outcome_level, self.outcome_reason,
                   self.outcome_time)
        return len(set(map(len, done))) == 1 and len(set(map(len, outcome))) == 1

    def copy(self) -> StageLog:
        """A copy whose rows can change without changing this one (a Journal keeps what it read)."""
        return StageLog(self.stage, **{name: type(value)(value) for name, value in vars(self).items()
                                       if name != "stage"})

    def done(self, unit: str) -> DoneEntry | None:
        """The unit's latest DONE line, whatever came after it."""
        row = self.done_row.get(unit)
        return None if row is None else self.done_entry(row)

    def done_entry(self, row: int) -> DoneEntry:
        return RowEntry(self, row)

    def outcome(self, unit: str) -> OutcomeEntry | None:
        """The unit's latest FAILED / REJECTED / SKIPPED line, whatever came after it."""
        row = self.outcome_row.get(unit)
        return None if row is None else self.outcome_entry(row)

    def outcome_entry(self, row: int) -> OutcomeEntry:
        return OutcomeEntry(self.stage, self.outcome_unit[row], self.outcome_level[row], self.outcome_reason[row],
                            self.outcome_time[row])

    def outcome_since_done(self, unit: str) -> OutcomeEntry | None:
        """The unit's latest outcome line if no DONE line came after it."""
        row = self.outcome_row.get(unit)
        if row is None:
            return None
        done = self.done_row.get(unit)
        return self.outcome_entry(row) if done is None or self.done_seq[done] < self.outcome_seq[row] else None

    def latest_done_rows(self) -> list[int]:
        """Rows of the units whose latest line is DONE."""
        if not self.outcome_row:
            return list(range(len(self.done_unit)))
        seq, outcomes = self.outcome_seq, self.outcome_row
        return [row for row, unit in enumerate(self.done_unit)
                if (other := outcomes.get(unit)) is None or seq[other] < self.done_seq[row]]

    def latest_outcome_rows(self) -> list[int]:
        """Rows of the units whose latest line is an outcome."""
        seq, done = self.done_seq, self.done_row
        return [row for row, unit in enumerate(self.outcome_unit)
                if (other := done.get(unit)) is None or seq[other] < self.outcome_seq[row]]

    def latest(self, unit: str) -> DoneEntry | OutcomeEntry | None:
        """The unit's latest journal line of either kind."""
        done, outcome = self.done_row.get(unit), self.outcome_row.get(unit)
        if outcome is not None and (done is None or self.done_seq[done] < self.outcome_seq[outcome]):
            return self.outcome_entry(outcome)
        return None if done is None else self.done_entry(done)

    def extra_value(self, row: int, key: str, default: Any = None) -> Any:
        keys = self.extra_keys[row]
        return self.extra_values[row][keys.index(key)] if key in keys else default

    def option_value(self, row: int, key: str, default: Any = None) -> Any:
        keys = self.option_keys[row]
        return self.option_values[row][keys.index(key)] if keys is not None and key in keys else default

    def extra_column(self, rows: list[int], key: str, default: Any = None) -> list[Any]:
        """``extra_value`` of each row: where ``key`` sits is looked up again only when a row's
        (shared) key tuple is not the previous row's, which at 100k rows is nearly never."""
        keys_of, values_of = self.extra_keys, self.extra_values
        column: list[Any] = []
        append = column.append
        last: tuple | None = None
        position: int | None = None
        for row in rows:
            keys = keys_of[row]
            if keys is not last:
                last, position = keys, (keys.index(key) if key in keys else None)
            append(default if position is None else values_of[row][position])
        return column


class RowEntry(DoneEntry):
    """A DoneEntry read from a StageLog row: its files, extra and options are built when first read.

    A rerun that walks 100k entries for their params digest then builds three dicts
    per entry only for the ones it looks into. The row never changes under it: a
    StageLog is copied, not changed, once handed out.
    """

    def __init__(self, log: StageLog, row: int) -> None:  # noqa: D107 - fields as DoneEntry's
        self.__dict__.update(stage=log.stage, unit=log.done_unit[row], params=log.done_params[row],
                             time=log.done_time[row], _log=log, _row=row)

    @cached_property
    def files(self) -> dict[str, list]:  # type: ignore[override]
        return files_dict(self._log.done_files[self._row])

    @cached_property
    def extra(self) -> dict[str, Any]:  # type: ignore[override]
        return dict(zip(self._log.extra_keys[self._row], self._log.extra_values[self._row]))

    @cached_property
    def options(self) -> dict[str, Any] | None:  # type: ignore[override]
        keys = self._log.option_keys[self._row]
        return None if keys is None else dict(zip(keys, self._log.option_values[self._row]))

    def extra_value(self, key: str, default: Any = None) -> Any:
        return self._log.extra_value(self._row, key, default)

    def option_value(self, key: str, default: Any = None) -> Any:
        return self._log.option_value(self._row, key, default)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DoneEntry) and _fields(self) == _fields(other)

    def __repr__(self) -> str:
        return DoneEntry.__repr__(self).replace("RowEntry(", "DoneEntry(", 1)


def _fields(entry: DoneEntry) -> tuple:
    return entry.stage, entry.unit, entry.params, entry.files, entry.extra, entry.options, entry.time


class DoneEntries(Mapping):
    """Latest DONE entry per unit of a StageLog plus the ones marked since, built on access.

    ``Journal.entries()`` is asked once per unit by some stages: a view, not a copy
    of 100k entries each time.
    """

    def __init__(self, log: StageLog, marked: Mapping[str, DoneEntry]) -> None:
        self._log, self._marked = log, marked

    def __getitem__(self, unit: str) -> DoneEntry:
        entry = self._marked.get(unit) or self._log.done(unit)
        if entry is None:
            raise KeyError(unit)
        return entry

    def __contains__(self, unit: object) -> bool:
        return unit in self._marked or unit in self._log.done_row

    def __iter__(self) -> Iterator[str]:
        yield from self._log.done_row
        yield from [unit for unit in self._marked if unit not in self._log.done_row]  # marking may go on meanwhile

    def __len__(self) -> int:
        return len(self._log.done_row) + sum(unit not in self._log.done_row for unit in self._marked)

    def items(self) -> Iterator[tuple[str, DoneEntry]]:  # type: ignore[override]
        """(unit, entry) pairs, without a lookup per unit (a rerun walks all 100k)."""
        log, marked = self._log, self._marked
        for row, unit in enumerate(log.done_unit):
            yield unit, marked.get(unit) or RowEntry(log, row)
        yield from [(unit, entry) for unit, entry in marked.items() if unit not in log.done_row]

    def values(self) -> Iterator[DoneEntry]:  # type: ignore[override]
        return (entry for _, entry in self.items())
