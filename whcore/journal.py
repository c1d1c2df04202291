"""The run journal behind ``logs/log.txt``.

Every event goes to ``log.txt`` as one human-readable loguru line. A finished
unit of work is one ``DONE`` line, written and fsynced only after the unit's
outputs are in place; a unit that failed, was rejected (licence gate) or was
skipped by a rule (duplicate audio, too short to cut) is one ``FAILED``,
``REJECTED`` or ``SKIPPED`` line, so ``python -m status`` can count them::

    2026-11-21 22:16:18.123 | DONE    | segment  | source:lecture {"format": 2, "params": "…", "options": {…}, "files": {…}}
    2026-11-21 22:16:19.001 | FAILED  | segment  | source:broken {"reason": "…"}

Units are namespaced, so a local file called ``dataset.mp3`` (source id
``dataset``) never collides with the dataset unit: ``source:<id>``, ``dataset``,
``baseline``, ``checkpoint:<step>``, ``model``, ``push``. The options a unit was
made with are stored in clear beside their digest, so a rerun says which option
changed (``source:lecture: redo: window changed 10.0 → 5.0``).

A rerun skips a unit only if its latest DONE line parses, its options digest
matches and every file it listed still exists with the same size (and sha256, for
files recorded with one). A line cut short by a SIGKILL does not parse and so does
not count; the next writer starts on a fresh line. Lines written before units were
namespaced (format 1: bare source ids, ``checkpoint-<step>``, digest only) are still
read, mapped to their namespaced names.

Several processes may append at once (label shards, finetune ranks): each line is
written with one ``write`` under an ``flock`` of the log file, so lines never
interleave, however long.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import pickle
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_str
from pathlib import Path
from typing import Any, Iterable, Mapping

import xxhash
from loguru import logger

from whcore import lock
from whcore.journal_table import (FILE_FIELDS, DoneEntries, DoneEntry, OutcomeEntry, StageLog, ValuePicker,
                                  flat_contents, flat_files)
from whcore.publish import temp_name
from whcore.workspace import Workspace

DONE_LEVEL = "DONE"
DONE_LEVEL_NO = 25  # between INFO (20) and WARNING (30)
FAILED_LEVEL, REJECTED_LEVEL, SKIPPED_LEVEL = "FAILED", "REJECTED", "SKIPPED"
OUTCOME_LEVELS = {FAILED_LEVEL: 40, REJECTED_LEVEL: 25, SKIPPED_LEVEL: 20}  # loguru severities
JOURNAL_LEVELS = (DONE_LEVEL, *OUTCOME_LEVELS)
JOURNAL_FORMAT = 2  # 2: namespaced units, options in clear; 1 (no "format" key): bare ids, digest only
FILE_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {extra[stage]: <8} | {message}"
CONSOLE_FORMAT = "<level>{level: <7}</level> | {extra[stage]} | {message}"
HASH_CHUNK_BYTES = 1 << 20
MAX_SHOWN_CHANGES = 4  # option changes named in one "redo" line
MAX_SHOWN_VALUE_CHARS = 48
INDEX_NAME = ".journal-index"  # parsed journal beside log.txt (a cache; see _load_index)
INDEX_MAGIC = "whisper-harvest journal index"
INDEX_VERSION = 5  # bump when StageLog's columns change
INDEX_MIN_NEW_LINES = 2000  # rewrite the index once this many new lines were parsed

SOURCE_PREFIX = "source:"
CHECKPOINT_PREFIX = "checkpoint:"
DATASET_UNIT = "dataset"
BASELINE_UNIT = "baseline"
MODEL_UNIT = "model"
PUSH_UNIT = "push"
_PLAIN_UNITS = (DATASET_UNIT, BASELINE_UNIT, MODEL_UNIT, PUSH_UNIT)
_LEGACY_CHECKPOINT_PREFIX = "checkpoint-"


def source_unit(source_id: str) -> str:
    """The journal unit of one source in any stage."""
    return f"{SOURCE_PREFIX}{source_id}"


def checkpoint_unit(step: int) -> str:
    """The journal unit of the training checkpoint taken after ``step`` optimizer steps."""
    return f"{CHECKPOINT_PREFIX}{step}"


def unit_source_id(unit: str) -> str | None:
    """The source id of a ``source:<id>`` unit, else None."""
    return unit[len(SOURCE_PREFIX):] if unit.startswith(SOURCE_PREFIX) else None


def unit_step(unit: str) -> int | None:
    """The step of a ``checkpoint:<step>`` unit, else None."""
    suffix = unit[len(CHECKPOINT_PREFIX):] if unit.startswith(CHECKPOINT_PREFIX) else ""
    return int(suffix) if suffix.isdigit() else None


def legacy_unit(unit: str) -> str:
    """The namespaced name of a unit written by format 1 (bare source ids)."""
    if unit in _PLAIN_UNITS or ":" in unit:
        return unit
    if unit.startswith(_LEGACY_CHECKPOINT_PREFIX) and unit[len(_LEGACY_CHECKPOINT_PREFIX):].isdigit():
        return checkpoint_unit(int(unit[len(_LEGACY_CHECKPOINT_PREFIX):]))
    return source_unit(unit)


def file_sha256(path: Path | str, info: os.stat_result | None = None) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (bounded memory).

    A file a parsed journal recorded with its sha256, size and modification time is
    not read again while its size and time are unchanged (label digests every
    windows manifest on every run: 100k manifests would cost minutes). ``info``: the
    file's stat, if the caller just took it (not taken twice).
    """
    known = _known_sha256(str(path), info)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_listing(files: Mapping[str, list]) -> dict[str, list]:
    """A DONE entry's files as size and sha256 only: what they hold, not when they were written
    (what a unit built from them, such as the dataset, records in its own params)."""
    return {relative: list(recorded[:2]) for relative, recorded in files.items()}


def params_digest(params: Mapping[str, Any]) -> str:
    """Short stable digest of the options that shape a unit's output."""
    if isinstance(params, DigestedParams):
        return params.digest
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def contents_digest(listings: Mapping[str, tuple]) -> str:
    """``params_digest({key: flat_contents(flat) for key, flat in listings.items()})``, its JSON
    written directly: status checks the dataset against 100k label files, and building 100k
    dicts to encode them was most of that check. The digest is the same (tested); a listing
    this cannot write exactly as ``json.dumps`` would is encoded the plain way."""
    parts = []
    for key in sorted(listings):
        flat = listings[key]
        if type(key) is not str:
            return params_digest({key: flat_contents(flat) for key, flat in listings.items()})
        if len(flat) == FILE_FIELDS:  # one file per unit (label's): nothing to sort or deduplicate
            relative, size, sha256 = flat[0], flat[1], flat[2]
            if type(relative) is str and type(size) is int and (sha256 is None or type(sha256) is str):
                parts.append(f"{_json_str(key)}: {{{_json_str(relative)}: "
                             f"[{size}, {'null' if sha256 is None else _json_str(sha256)}]}}")
                continue
        relatives = flat[0::FILE_FIELDS]
        if len(set(relatives)) != len(relatives) or not all(type(value) is str for value in relatives) \
                or not all(type(value) is int for value in flat[1::FILE_FIELDS]) \
                or not all(value is None or type(value) is str for value in flat[2::FILE_FIELDS]):
            return params_digest({key: flat_contents(flat) for key, flat in listings.items()})
        files = sorted(range(0, len(flat), FILE_FIELDS), key=flat.__getitem__)
        inner = ", ".join(f"{_json_str(flat[i])}: [{flat[i + 1]}, "
                          f"{'null' if flat[i + 2] is None else _json_str(flat[i + 2])}]" for i in files)
        parts.append(f"{_json_str(key)}: {{{inner}}}")
    return hashlib.sha256(("{" + ", ".join(parts) + "}").encode("utf-8")).hexdigest()[:16]


class DigestedParams(dict):
    """Params that carry their ``params_digest`` already (made by ``ParamsDigester``; do not mutate)."""

    digest: str


class ParamsDigester:
    """``params_digest`` of ``{**base, **per_unit}`` for many units, ``base`` encoded once.

    label's params are its options plus one manifest digest per source, segment's its
    options plus the source's audio path and sha256: at 100k sources, encoding the same
    options again for every unit was most of a rerun's "what is done" check. The text
    hashed is exactly what ``params_digest`` hashes (the slots are spliced into the
    sorted JSON where their keys sort), so digests are equal (tested) and journals
    written either way agree.
    """

    def __init__(self, base: Mapping[str, Any], keys: tuple[str, ...]) -> None:
        self.base = dict(base)
        self.keys = keys
        slots = {key: f"\x00slot {i}\x00" for i, key in enumerate(keys)}
        text = json.dumps({**self.base, **slots}, sort_keys=True, default=str)
        self._parts: list[str] = []
        self._order: list[str] = []
        for key, slot in sorted(slots.items(), key=lambda item: text.index(json.dumps(item[1]))):
            head, text = text.split(json.dumps(slot), 1)
            self._parts.append(head)
            self._order.append(key)
        self._parts.append(text)
        self._positions = [keys.index(key) for key in self._order]  # each slot's value in ``keys`` order

    def params(self, **values: Any) -> DigestedParams:
        """The full params for one unit, with their digest."""
        params = DigestedParams(self.base, **values)
        params.digest = self.digest(**values)
        return params

    def digest(self, **values: Any) -> str:
        """``params_digest`` of the full params for one unit, without building them."""
        if values.keys() != set(self.keys):
            raise TypeError(f"expected values for {sorted(self.keys)}, got {sorted(values)}")
        return self.digest_values(tuple(values[key] for key in self.keys))

    def digest_values(self, values: tuple) -> str:
        """``digest`` of the per-unit values given in ``keys`` order: a rerun's check makes 100k
        of these, and the keyword dict and lookups were a third of each."""
        parts = self._parts
        text = parts[0]
        for position, part in zip(self._positions, parts[1:]):
            value = values[position]
            # what json.dumps does for a str (ensure_ascii), minus its Python-level overhead
            text += (_json_str(value) if type(value) is str else json.dumps(value, sort_keys=True, default=str)) + part
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def clear_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as the journal stores them (JSON types only), so stored and new compare equal."""
    return json.loads(json.dumps(params, sort_keys=True, default=str))


class _JournalSink:
    """Loguru sink appending whole lines to log.txt under an flock; fsyncs DONE lines."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._torn_checked = False
        self._path = path

    def write(self, message: Any) -> None:
        data = str(message).encode("utf-8")
        with lock.hold_fd(self._fd):
            if not self._torn_checked:
                data = self._after_torn_line() + data
                self._torn_checked = True
            _write_all(self._fd, data)
            if message.record["level"].name == DONE_LEVEL:
                os.fsync(self._fd)

    def _after_torn_line(self) -> bytes:
        """A newline if a killed writer left the log's last line unfinished, so ours starts clean."""
        with open(self._path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return b""
            handle.seek(-1, os.SEEK_END)
            return b"" if handle.read(1) == b"\n" else b"\n"

    def stop(self) -> None:
        os.close(self._fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _one_line(record: dict) -> None:
    record["message"] = record["message"].replace("\r", " ").replace("\n", " ⏎ ")


def _console_format(record: dict) -> str:
    """Console lines; a DONE line shows only its unit (its file list can be 300 KB)."""
    level = record["level"].name
    if level == DONE_LEVEL:
        return "<level>{level: <7}</level> | {extra[stage]} | done {extra[unit]}\n"
    if level in OUTCOME_LEVELS:
        return "<level>{level: <7}</level> | {extra[stage]} | {extra[unit]}: {extra[reason]}\n"
    return CONSOLE_FORMAT + "\n"


def _console_write(message: str) -> None:
    """Print through tqdm so log lines do not tear progress bars."""
    try:
        from tqdm import tqdm

        tqdm.write(str(message), end="", file=sys.stderr)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        sys.stderr.write(str(message))


def _register_levels() -> None:
    try:
        logger.level(DONE_LEVEL)
    except ValueError:
        logger.level(DONE_LEVEL, no=DONE_LEVEL_NO, color="<green><bold>")
    colors = {FAILED_LEVEL: "<red><bold>", REJECTED_LEVEL: "<yellow>", SKIPPED_LEVEL: "<cyan>"}
    for name, number in OUTCOME_LEVELS.items():
        try:
            logger.level(name)
        except ValueError:
            logger.level(name, no=number, color=colors[name])


def setup_logging(workspace: Workspace, stage: str, verbose: bool = False) -> Any:
    """Route loguru to ``log.txt`` (everything) and stderr (INFO+); return a stage logger."""
    _register_levels()
    logger.remove()
    logger.configure(patcher=_one_line, extra={"stage": stage})
    sink = _JournalSink(workspace.log_path)
    logger.add(sink, format=FILE_FORMAT, level="DEBUG", colorize=False, catch=False)
    logger.add(_console_write, format=_console_format, level="DEBUG" if verbose else "INFO",
               colorize=sys.stderr.isatty(), filter=lambda record: record["extra"].get("echo", True))
    return logger.bind(stage=stage)


class Journal:
    """Read and write a stage's journal lines in the workspace log."""

    def __init__(self, workspace: Workspace, stage: str) -> None:
        _register_levels()
        self.workspace = workspace
        self.stage = stage
        self._log = stage_log(workspace.log_path, stage)  # what the log held when opened
        self._root = str(workspace.root)
        self._marked: dict[str, DoneEntry] = {}  # lines this journal wrote since
        self._marked_outcomes: dict[str, OutcomeEntry | None] = {}  # None: DONE since
        self._explained: set[str] = set()

    def entries(self) -> Mapping[str, DoneEntry]:
        """Latest DONE entry per unit (valid or not), including the ones this journal marks later.

        A view: each entry is built when asked for, and nothing is copied (segment asks
        once per unit already done; a copy of 100k entries each time was quadratic).
        """
        return DoneEntries(self._log, self._marked)

    def source_entries(self) -> Mapping[str, DoneEntry]:
        """Latest DONE entry per source id (the ``source:<id>`` units)."""
        return SourceEntries(self.entries())

    def outcomes(self) -> dict[str, OutcomeEntry]:
        """Latest FAILED / REJECTED / SKIPPED line per unit not DONE since."""
        found = {self._log.outcome_unit[row]: self._log.outcome_entry(row) for row in self._log.latest_outcome_rows()}
        for unit, outcome in self._marked_outcomes.items():
            if outcome is None:
                found.pop(unit, None)
            else:
                found[unit] = outcome
        return found

    def _outcome(self, unit: str) -> OutcomeEntry | None:
        if unit in self._marked_outcomes:
            return self._marked_outcomes[unit]
        return self._log.outcome(unit) if unit in self._marked else self._log.outcome_since_done(unit)

    def _has_line(self, unit: str) -> bool:
        return unit in self._marked or unit in self._marked_outcomes or unit in self._log.done_row \
            or unit in self._log.outcome_row

    def is_done(self, unit: str, params: str | Mapping[str, Any]) -> bool:
        """True if ``unit`` finished with these params and its outputs are intact.

        When it did finish before but must be redone, the log says why, once per unit:
        which option changed, or which file is missing or altered.
        """
        reason = self.stale_reason(unit, params)
        if reason is None:
            return True
        if self._has_line(unit) and unit not in self._explained:
            self._explained.add(unit)
            logger.bind(stage=self.stage).info(f"{unit}: redo: {reason}")
        return False

    def done_values_reader(self, extras: tuple[str, ...], options: tuple[str, ...]
                           ) -> Callable[[str], tuple[tuple[Any, ...], tuple[Any, ...]] | None]:
        """``read(unit)``: some extra and option values of ``unit``'s latest DONE line (None where
        absent), or None without one. What a rerun reads of 100k units: no entry is built per
        unit, and where each key sits is found once per distinct key tuple (``ValuePicker``)."""
        extras_of, options_of = ValuePicker(extras), ValuePicker(options)
        log, marked_entries, done_row = self._log, self._marked, self._log.done_row

        def read(unit: str) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
            marked = marked_entries.get(unit)
            if marked is not None:
                return (tuple(marked.extra_value(key) for key in extras),
                        tuple(marked.option_value(key) for key in options))
            row = done_row.get(unit)
            if row is None:
                return None
            return (extras_of(log.extra_keys[row], log.extra_values[row]),
                    options_of(log.option_keys[row], log.option_values[row]))

        return read

    def stale_reason(self, unit: str, params: str | Mapping[str, Any]) -> str | None:
        """Why ``unit`` must be (re)done with ``params``; None when its DONE entry still holds."""
        digest = params if isinstance(params, str) else params_digest(params)
        marked = self._marked.get(unit)
        row = None if marked is not None else self._log.done_row.get(unit)
        if marked is None and row is None:
            outcome = self._outcome(unit)
            return f"{outcome.outcome.lower()} last time: {outcome.reason}" if outcome else "not done yet"
        recorded = marked.params if marked is not None else self._log.done_params[row]
        if recorded != digest:
            entry = marked if marked is not None else self._log.done_entry(row)
            new = None if isinstance(params, str) else clear_options(params)
            return describe_changes(entry.options, new)
        return listing_problem(self._root, flat_files(marked.files) if marked is not None
                               else self._log.done_files[row])

    def mark_done(self, unit: str, params: str | Mapping[str, Any], files: Iterable[Path] = (),
                  hashed: Iterable[Path] = (), extra: dict[str, Any] | None = None) -> DoneEntry:
        """Record ``unit`` as finished. Call only after its outputs are renamed into place.

        ``params`` are the options that shaped the output, as a dict (stored in clear
        beside their digest) or an already computed digest. ``files`` are checked by
        size on resume; ``hashed`` also by sha256 (use it for small manifests whose
        content matters).
        """
        listing: dict[str, list] = {}
        for path in files:
            listing[self.workspace.relative(path)] = [Path(path).stat().st_size, None]
        for path in hashed:
            info = Path(path).stat()
            listing[self.workspace.relative(path)] = [info.st_size, file_sha256(path), info.st_mtime_ns]
        options = None if isinstance(params, str) else clear_options(params)
        digest = params if isinstance(params, str) else params_digest(params)
        entry = DoneEntry(self.stage, unit, digest, listing, extra or {}, options)
        payload = json.dumps({"format": JOURNAL_FORMAT, "params": digest, "options": options,
                              "files": listing, "extra": entry.extra}, ensure_ascii=False, sort_keys=True)
        logger.bind(stage=self.stage, unit=unit).log(DONE_LEVEL, f"{unit} {payload}")
        self._marked[unit] = entry
        self._marked_outcomes[unit] = None
        return entry

    def mark_failed(self, unit: str, reason: str, echo: bool = True) -> OutcomeEntry:
        """Record that ``unit`` failed (one line naming the input and the fix); the run goes on.

        ``echo=False`` keeps the line off the console (the stage already printed its own).
        """
        return self._mark(unit, FAILED_LEVEL, reason, echo)

    def mark_rejected(self, unit: str, reason: str, echo: bool = True) -> OutcomeEntry:
        """Record that a gate refused ``unit`` (e.g. not Creative Commons)."""
        return self._mark(unit, REJECTED_LEVEL, reason, echo)

    def mark_skipped(self, unit: str, reason: str, echo: bool = True) -> OutcomeEntry:
        """Record that ``unit`` was skipped by a rule (duplicate audio, too short to cut)."""
        return self._mark(unit, SKIPPED_LEVEL, reason, echo)

    def _mark(self, unit: str, outcome: str, reason: str, echo: bool) -> OutcomeEntry:
        reason = " ".join(str(reason).split())
        payload = json.dumps({"reason": reason}, ensure_ascii=False)
        logger.bind(stage=self.stage, unit=unit, reason=reason, echo=echo).log(outcome, f"{unit} {payload}")
        entry = OutcomeEntry(self.stage, unit, outcome, reason)
        self._marked_outcomes[unit] = entry
        return entry


class SourceEntries(Mapping):
    """A view of DONE entries by source id (the ``source:<id>`` units), built on access."""

    def __init__(self, entries: Mapping[str, DoneEntry]) -> None:
        self._entries = entries

    def __getitem__(self, source_id: str) -> DoneEntry:
        return self._entries[source_unit(source_id)]

    def __contains__(self, source_id: object) -> bool:
        return isinstance(source_id, str) and source_unit(source_id) in self._entries

    def __iter__(self) -> Iterator[str]:
        return (unit[len(SOURCE_PREFIX):] for unit in self._entries if unit.startswith(SOURCE_PREFIX))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def files_problem(workspace: Workspace, entry: DoneEntry) -> str | None:
    """What is wrong with the files a DONE entry lists; None when all are intact."""
    return listing_problem(str(workspace.root), flat_files(entry.files))


def listing_problem(root: str, flat: tuple) -> str | None:
    """What is wrong with the files of a flat listing (``flat_files``) under ``root``; None when all are intact.

    A hashed file whose size and modification time (in ns) are still those the entry
    recorded is not read again: a rerun or ``status`` over 100k units stats the files
    instead of hashing them all (entries without a recorded time are hashed). Paths
    are plain strings: building a ``Path`` per file cost more than the stat itself.
    """
    fields = iter(flat)
    for relative, size, sha256, mtime_ns in zip(fields, fields, fields, fields):  # FILE_FIELDS at a time
        path = relative if relative.startswith("/") else f"{root}/{relative}"
        try:
            info = os.stat(path)
        except OSError:
            return f"{relative} is missing"
        if not stat.S_ISREG(info.st_mode):
            return f"{relative} is missing"
        if info.st_size != size:
            return f"{relative} changed size ({size} → {info.st_size} bytes)"
        if sha256 is not None and mtime_ns != info.st_mtime_ns and file_sha256(Path(path)) != sha256:
            return f"{relative} changed content (sha256)"
    return None


def describe_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> str:
    """One phrase naming the options that differ, e.g. ``window changed 10.0 → 5.0``."""
    if old is None or new is None:
        return "options changed (the earlier run recorded only their digest)"
    before, after = _flatten(old), _flatten(new)
    changes = [f"{key} changed {_short(before.get(key, '(unset)'))} → {_short(after.get(key, '(unset)'))}"
               for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
    if not changes:
        return "options changed"
    more = len(changes) - MAX_SHOWN_CHANGES
    return "; ".join(changes[:MAX_SHOWN_CHANGES]) + (f"; and {more} more" if more > 0 else "")


def _flatten(options: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in options.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    return text if len(text) <= MAX_SHOWN_VALUE_CHARS else text[:MAX_SHOWN_VALUE_CHARS - 1] + "…"


@dataclass
class _ParsedLog:
    """The journal of one log file parsed so far, and where parsing stopped."""

    root: str  # the workspace the log lies in (listed paths are relative to it)
    inode: int
    offset: int  # bytes consumed: always just after a newline
    digest: str  # xxh3-128 of the bytes consumed: if it changed, the log was rewritten, not appended to
    signature: tuple[int, ...] = ()  # the log's inode, size, mtime_ns, ctime_ns when the index was written
    lines: int = 0  # journal lines (DONE, FAILED, REJECTED, SKIPPED) parsed
    torn: int = 0  # DONE lines cut short by a kill (they never count)
    stages: dict[str, StageLog | bytes] = field(default_factory=dict)  # bytes: from the index, decoded when asked
    entries: list[DoneEntry | OutcomeEntry] | None = field(default_factory=list)  # every line; None: not read yet
    hashes: dict[str, dict[str, tuple[int, int, str]]] = field(default_factory=dict)  # stage -> relpath -> size,
    # mtime_ns, sha256 of the hashed files its DONE lines list; a stage's is built on first use
    shapes: dict[tuple, tuple] = field(default_factory=dict)  # interned key tuples of the stage logs

    def stage(self, name: str) -> StageLog:
        """One stage's log, decoded from the index on first use."""
        log = self.stages.get(name)
        if isinstance(log, bytes):
            log = _decode_stage(name, log)
        elif log is None:
            log = StageLog(name)
        self.stages[name] = log
        return log


class _BrokenIndex(Exception):
    """A stage in the index did not decode: the log is parsed again from its start."""


_PARSED: dict[Path, _ParsedLog] = {}
_PARSED_LOCK = threading.Lock()


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a log or index is turned into columns (or walked).

    Their 100k-row lists and tuples hold no cycles, but each few hundred new ones
    start a collection that walks every object made so far: loading the index of
    100k units took twice as long with it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def stage_log(log_path: Path, stage: str) -> StageLog:
    """The latest DONE and outcome line per unit of ``stage``, as the log holds them now.

    The log is parsed once per process: later calls parse only the lines appended
    since (the log only grows; a replaced or rewritten file is parsed again from
    the start). Across processes, ``logs/.journal-index`` (see ``_load_index``)
    holds the stage logs, so a rerun or ``status`` on a log of 100k units parses
    only what was appended since the index was written. The log returned is not
    changed by later reads (they work on a copy), so a Journal keeps what it read.
    """
    return _read(Path(log_path), lambda parsed: parsed.stage(stage))


def stage_logs(log_path: Path) -> dict[str, StageLog]:
    """``stage_log`` of every stage with a journal line."""
    return _read(Path(log_path), lambda parsed: {name: parsed.stage(name) for name in list(parsed.stages)})


def journal_line_count(log_path: Path) -> int:
    """How many journal lines (DONE, FAILED, REJECTED, SKIPPED) the log holds."""
    return _read(Path(log_path), lambda parsed: parsed.lines)


def read_journal(log_path: Path) -> list[DoneEntry | OutcomeEntry]:
    """Every journal line of ``log_path`` in order (ordinary events and torn lines left out).

    The lines are kept from this process's parse; when the stage logs came from the
    index, the log is read once more, from its start, the first time this is asked.
    """
    return _read(Path(log_path), lambda parsed: list(_all_entries(Path(log_path), parsed)))


def torn_done_lines(log_path: Path) -> int:
    """How many DONE lines of the log were cut short by a kill (``status`` reports them)."""
    return _read(Path(log_path), lambda parsed: parsed.torn)


def _read(path: Path, use: Any) -> Any:
    """``use`` applied to the log parsed up to now; an index that turns out damaged is dropped."""
    with _PARSED_LOCK:
        try:
            return use(_parsed(path))
        except _BrokenIndex:
            return use(_parsed(path, fresh=True))


def _parsed(path: Path, fresh: bool = False) -> _ParsedLog:
    root = str(path.parent.parent)  # <workspace>/logs/log.txt
    try:
        info = path.stat()
    except FileNotFoundError:
        return _ParsedLog(root, 0, 0, "")
    key = path.resolve()
    with open(path, "rb") as handle:
        parsed = None if fresh else _PARSED.get(key) or _load_index(path)
        if parsed is not None and parsed.signature and parsed.signature == _log_signature(info):
            _PARSED[key] = parsed
            return parsed  # the very file and bytes parsed: nothing appended, nothing to hash
        hasher = _prefix_hasher(handle, parsed) if parsed is not None and parsed.inode == info.st_ino else None
        if parsed is None or hasher is None:
            parsed, hasher = _ParsedLog(root, info.st_ino, 0, ""), xxhash.xxh3_128()
        _PARSED[key] = parsed
        handle.seek(parsed.offset)
        data = handle.read()
        after = os.fstat(handle.fileno())
    complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next call
    lines = complete.decode("utf-8", errors="replace").splitlines()
    with gc_paused():
        _append(parsed, lines)
    hasher.update(complete)
    parsed.offset += len(complete)
    parsed.digest = hasher.hexdigest()
    parsed.signature = _log_signature(after) if after.st_size == parsed.offset else ()
    if len(lines) >= INDEX_MIN_NEW_LINES:
        _save_index(path, parsed)
    return parsed


def _append(parsed: _ParsedLog, lines: list[str]) -> None:
    """Add the journal lines among ``lines`` to the stage logs (copies of them: see ``stage_log``)."""
    copied: set[str] = set()
    for line in lines:
        entry = parse_journal_line(line)
        if entry is None:
            parsed.torn += f" | {DONE_LEVEL}    | " in line
            continue
        if entry.stage not in copied:
            parsed.stages[entry.stage] = parsed.stage(entry.stage).copy()
            copied.add(entry.stage)
        parsed.stages[entry.stage].add(entry, parsed.lines, parsed.shapes)
        parsed.lines += 1
        if parsed.entries is not None:
            parsed.entries.append(entry)
        if entry.stage in parsed.hashes and isinstance(entry, DoneEntry):
            _remember_hashes(parsed.hashes[entry.stage], flat_files(entry.files))


def _all_entries(path: Path, parsed: _ParsedLog) -> list[DoneEntry | OutcomeEntry]:
    """Every journal line up to where ``parsed`` stopped (parsed again if they came from the index)."""
    if parsed.entries is None:
        with open(path, "rb") as handle:
            text = handle.read(parsed.offset).decode("utf-8", errors="replace")
        parsed.entries = [entry for entry in map(parse_journal_line, text.splitlines()) if entry is not None]
    return parsed.entries


def _remember_hashes(hashes: dict[str, tuple[int, int, str]], flat: tuple) -> None:
    """Note the sha256 of every file of a flat listing recorded with its size and modification time."""
    fields = iter(flat)
    for relative, size, sha256, mtime_ns in zip(fields, fields, fields, fields):  # FILE_FIELDS at a time
        if sha256 and mtime_ns is not None:
            hashes[relative] = (size, mtime_ns, sha256)


def _recorded_hashes(parsed: _ParsedLog, stage: str) -> dict[str, tuple[int, int, str]]:
    """Every hashed file one stage's DONE lines list, by path relative to the workspace (built on first use)."""
    hashes = parsed.hashes.get(stage)
    if hashes is None:
        hashes = {}
        for flat in parsed.stage(stage).done_files:
            _remember_hashes(hashes, flat)
        parsed.hashes[stage] = hashes
    return hashes


def _known_sha256(path: str, info: os.stat_result | None = None) -> str | None:
    """The sha256 a parsed journal recorded for ``path``, if its size and time are still the recorded ones.

    The stages are searched in the order the log first names them, each one's table
    built only when the ones before it do not list the file (label's rerun finds every
    windows manifest in segment's, and never builds its own 100k-row table for them).
    """
    try:
        with _PARSED_LOCK:
            for parsed in list(_PARSED.values()):
                if not path.startswith(f"{parsed.root}/"):
                    continue
                relative = path[len(parsed.root) + 1:]
                for stage in list(parsed.stages):
                    recorded = _recorded_hashes(parsed, stage).get(relative)
                    if recorded is None:
                        continue
                    if info is None:
                        info = os.stat(path)
                    if (info.st_size, info.st_mtime_ns) == recorded[:2]:
                        return recorded[2]
    except (_BrokenIndex, OSError):
        return None
    return None


def _log_signature(info: os.stat_result) -> tuple[int, ...]:
    """What changes when a file is written to: a log with the signature recorded when it was
    parsed holds the bytes parsed, and is not read again."""
    return info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


def _prefix_hasher(handle: Any, parsed: _ParsedLog) -> Any:
    """An xxh3-128 over the log's first ``parsed.offset`` bytes if they are still the bytes parsed
    (the log was only appended to since), else None. Hashing reads the log once
    (the 186 MB log of 100k units: 0.05 s, where blake2b took 0.38 s on the same
    busy machine); parsing it again would cost hundreds of times that.
    A cache check against accidents (an edited or replaced log), not against an adversary."""
    hasher = xxhash.xxh3_128()
    remaining = parsed.offset
    handle.seek(0)
    while remaining > 0:
        chunk = handle.read(min(remaining, HASH_CHUNK_BYTES * 8))
        if not chunk:
            return None
        hasher.update(chunk)
        remaining -= len(chunk)
    return hasher if hasher.hexdigest() == parsed.digest else None


class _IndexUnpickler(pickle.Unpickler):
    """Loads builtins only (str, int, float, None, list, tuple, dict, bytes): no class can be constructed."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} does not belong in a journal index")


def _index_path(log_path: Path) -> Path:
    return log_path.with_name(INDEX_NAME)


def _load_index(log_path: Path) -> _ParsedLog | None:
    """The stage logs parsed from the start of ``log_path`` by an earlier process, if its index is readable.

    Only a cache: it is checked against the log (same file, same bytes where it stopped)
    and ignored when anything is off (missing, truncated, another version, not ours), so
    deleting it is always safe. Each stage is decoded only when asked for.
    """
    try:
        with open(_index_path(log_path), "rb") as handle, gc_paused():
            magic, version, head, stages = _IndexUnpickler(handle).load()
        inode, offset, digest, signature, lines, torn = head
        if magic != INDEX_MAGIC or version != INDEX_VERSION or not isinstance(stages, dict) \
                or not all(isinstance(name, str) and isinstance(blob, bytes) for name, blob in stages.items()) \
                or not all(isinstance(value, int) for value in (inode, offset, lines, torn, *signature)):
            return None
    except Exception:  # noqa: BLE001 - a missing, old or damaged cache is simply not used
        return None
    return _ParsedLog(str(log_path.parent.parent), inode, offset, str(digest), tuple(signature), lines, torn,
                      dict(stages), entries=None)


def _decode_stage(name: str, blob: bytes) -> StageLog:
    """One stage of the index; _BrokenIndex unless it holds exactly StageLog's columns, of one length."""
    try:
        with gc_paused():
            columns = _IndexUnpickler(io.BytesIO(blob)).load()
        if columns.keys() != StageLog(name).__dict__.keys() - {"stage"}:
            raise ValueError(f"not the columns of a stage log: {sorted(columns)}")
        log = StageLog(name, **columns)
    except Exception as error:  # noqa: BLE001 - damaged: the log is parsed instead
        raise _BrokenIndex(name) from error
    if not log.is_consistent():
        raise _BrokenIndex(name)
    return log


def _encode_stage(log: StageLog) -> bytes:
    return pickle.dumps({name: value for name, value in vars(log).items() if name != "stage"},
                        protocol=pickle.HIGHEST_PROTOCOL)


def _save_index(log_path: Path, parsed: _ParsedLog) -> None:
    """Write the index (temp file + rename, so readers see the old one or the new one)."""
    target = _index_path(log_path)
    tmp = temp_name(target)
    try:
        head = (parsed.inode, parsed.offset, parsed.digest, parsed.signature, parsed.lines, parsed.torn)
        stages = {name: log if isinstance(log, bytes) else _encode_stage(log) for name, log in parsed.stages.items()}
        with open(tmp, "wb") as handle:
            pickle.dump((INDEX_MAGIC, INDEX_VERSION, head, stages), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, target)
    except OSError:  # a read-only or full disk: the log is still read, only slower
        tmp.unlink(missing_ok=True)


def parse_done_line(line: str) -> DoneEntry | None:
    """Parse one journal line; None for ordinary events, outcome lines and torn lines."""
    entry = parse_journal_line(line)
    return entry if isinstance(entry, DoneEntry) else None


def parse_journal_line(line: str) -> DoneEntry | OutcomeEntry | None:
    """Parse one DONE / FAILED / REJECTED / SKIPPED line; None for anything else."""
    parts = line.rstrip("\n").split(" | ", 3)
    if len(parts) != 4 or parts[1].strip() not in JOURNAL_LEVELS:
        return None
    level, stage, when = parts[1].strip(), parts[2].strip(), parts[0]
    unit, _, payload = parts[3].partition(" ")
    try:
        data = json.loads(payload)
        if level != DONE_LEVEL:
            return OutcomeEntry(stage, unit, level, str(data["reason"]), when)
        if data.get("format", 1) < JOURNAL_FORMAT:
            unit = legacy_unit(unit)
        options = data.get("options")
        return DoneEntry(stage, unit, str(data["params"]), dict(data["files"]), dict(data.get("extra") or {}),
                         options if isinstance(options, dict) else None, when)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
