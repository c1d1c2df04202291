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

import hashlib
import json
import os
import pickle
import stat
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from loguru import logger

from whcore import lock
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
INDEX_VERSION = 3  # bump when DoneEntry / OutcomeEntry change shape
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


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (bounded memory).

    A file a parsed journal recorded with its sha256, size and modification time is
    not read again while its size and time are unchanged (label digests every
    windows manifest on every run: 100k manifests would cost minutes).
    """
    known = _known_sha256(str(path))
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
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def clear_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as the journal stores them (JSON types only), so stored and new compare equal."""
    return json.loads(json.dumps(params, sort_keys=True, default=str))


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


@dataclass(frozen=True)
class OutcomeEntry:
    """A unit that ended without output: FAILED, REJECTED or SKIPPED (by a rule), with why."""

    stage: str
    unit: str
    outcome: str  # FAILED_LEVEL, REJECTED_LEVEL or SKIPPED_LEVEL
    reason: str
    time: str = ""


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
        self._entries, self._outcomes = self._read()
        self._explained: set[str] = set()

    def _read(self) -> tuple[dict[str, DoneEntry], dict[str, OutcomeEntry]]:
        entries: dict[str, DoneEntry] = {}
        outcomes: dict[str, OutcomeEntry] = {}
        for entry in read_journal(self.workspace.log_path):
            if entry.stage != self.stage:
                continue
            if isinstance(entry, DoneEntry):
                entries[entry.unit] = entry
                outcomes.pop(entry.unit, None)
            else:
                outcomes[entry.unit] = entry
        return entries, outcomes

    def entries(self) -> dict[str, DoneEntry]:
        """Latest DONE entry per unit (valid or not)."""
        return dict(self._entries)

    def source_entries(self) -> dict[str, DoneEntry]:
        """Latest DONE entry per source id (the ``source:<id>`` units)."""
        return {sid: entry for unit, entry in self._entries.items()
                if (sid := unit_source_id(unit)) is not None}

    def outcomes(self) -> dict[str, OutcomeEntry]:
        """Latest FAILED / REJECTED / SKIPPED line per unit not DONE since."""
        return dict(self._outcomes)

    def is_done(self, unit: str, params: str | Mapping[str, Any]) -> bool:
        """True if ``unit`` finished with these params and its outputs are intact.

        When it did finish before but must be redone, the log says why, once per unit:
        which option changed, or which file is missing or altered.
        """
        reason = self.stale_reason(unit, params)
        if reason is None:
            return True
        if (unit in self._entries or unit in self._outcomes) and unit not in self._explained:
            self._explained.add(unit)
            logger.bind(stage=self.stage).info(f"{unit}: redo: {reason}")
        return False

    def stale_reason(self, unit: str, params: str | Mapping[str, Any]) -> str | None:
        """Why ``unit`` must be (re)done with ``params``; None when its DONE entry still holds."""
        entry = self._entries.get(unit)
        if entry is None:
            outcome = self._outcomes.get(unit)
            return f"{outcome.outcome.lower()} last time: {outcome.reason}" if outcome else "not done yet"
        digest = params if isinstance(params, str) else params_digest(params)
        if entry.params != digest:
            new = None if isinstance(params, str) else clear_options(params)
            return describe_changes(entry.options, new)
        return files_problem(self.workspace, entry)

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
        self._entries[unit] = entry
        self._outcomes.pop(unit, None)
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
        self._outcomes[unit] = entry
        return entry


def files_problem(workspace: Workspace, entry: DoneEntry) -> str | None:
    """What is wrong with the files a DONE entry lists; None when all are intact.

    A hashed file whose size and modification time (in ns) are still those the entry
    recorded is not read again: a rerun or ``status`` over 100k units stats the files
    instead of hashing them all (entries without a recorded time are hashed).
    """
    root = str(workspace.root)
    for relative, recorded in entry.files.items():
        size, sha256 = recorded[0], recorded[1]
        try:
            info = os.stat(os.path.join(root, relative))
        except OSError:
            info = None
        if info is None or not stat.S_ISREG(info.st_mode):
            return f"{relative} is missing"
        if info.st_size != size:
            return f"{relative} changed size ({size} → {info.st_size} bytes)"
        unchanged = len(recorded) > 2 and recorded[2] == info.st_mtime_ns
        if sha256 is not None and not unchanged and file_sha256(workspace.absolute(relative)) != sha256:
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
    """The journal entries of one log file parsed so far, and where parsing stopped."""

    inode: int
    offset: int  # bytes consumed: always just after a newline
    digest: str  # blake2b of the bytes consumed: if it changed, the log was rewritten, not appended to
    entries: list[DoneEntry | OutcomeEntry]
    torn: int = 0  # DONE lines cut short by a kill (they never count)
    hashes: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # path -> size, mtime_ns, sha256 recorded


_PARSED: dict[Path, _ParsedLog] = {}
_PARSED_LOCK = threading.Lock()


def read_journal(log_path: Path) -> list[DoneEntry | OutcomeEntry]:
    """Every journal line of ``log_path`` in order (ordinary events and torn lines left out).

    The log is parsed once per process: later calls parse only the lines appended
    since (the log only grows; a replaced or rewritten file is parsed again from
    the start), so the several journals a run opens cost one pass over the log.
    Across processes, ``logs/.journal-index`` (see ``_load_index``) holds the parsed
    entries, so a rerun or ``status`` on a log of 100k units parses only what was
    appended since the index was written.
    """
    return list(_parsed(Path(log_path)).entries)


def torn_done_lines(log_path: Path) -> int:
    """How many DONE lines of the log were cut short by a kill (``status`` reports them)."""
    return _parsed(Path(log_path)).torn


def _parsed(path: Path) -> _ParsedLog:
    try:
        info = path.stat()
    except FileNotFoundError:
        return _ParsedLog(0, 0, "", [])
    key = path.resolve()
    with _PARSED_LOCK, open(path, "rb") as handle:
        parsed = _PARSED.get(key) or _load_index(path)
        hasher = _prefix_hasher(handle, parsed) if parsed is not None and parsed.inode == info.st_ino else None
        if parsed is None or hasher is None:
            parsed, hasher = _ParsedLog(info.st_ino, 0, "", []), hashlib.blake2b()
        _PARSED[key] = parsed
        handle.seek(parsed.offset)
        data = handle.read()
        complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next call
        lines = complete.decode("utf-8", errors="replace").splitlines()
        root = str(path.parent.parent)  # <workspace>/logs/log.txt
        for line in lines:
            entry = parse_journal_line(line)
            if entry is not None:
                parsed.entries.append(entry)
                _remember_hashes(parsed, root, entry)
            elif f" | {DONE_LEVEL}    | " in line:
                parsed.torn += 1
        hasher.update(complete)
        parsed.offset += len(complete)
        parsed.digest = hasher.hexdigest()
        if len(lines) >= INDEX_MIN_NEW_LINES:
            _save_index(path, parsed)
        return parsed


def _remember_hashes(parsed: _ParsedLog, root: str, entry: DoneEntry | OutcomeEntry) -> None:
    """Note the sha256 of every file a DONE entry recorded with its size and modification time."""
    for relative, recorded in getattr(entry, "files", {}).items():
        if len(recorded) > 2 and recorded[1]:
            parsed.hashes[os.path.join(root, relative)] = (recorded[0], recorded[2], recorded[1])


def _known_sha256(path: str) -> str | None:
    """The sha256 a parsed journal recorded for ``path``, if its size and time are still the recorded ones."""
    with _PARSED_LOCK:
        known = [parsed.hashes.get(path) for parsed in _PARSED.values()]
    for recorded in known:
        if recorded is not None:
            try:
                info = os.stat(path)
            except OSError:
                return None
            if (info.st_size, info.st_mtime_ns) == recorded[:2]:
                return recorded[2]
    return None


def _prefix_hasher(handle: Any, parsed: _ParsedLog) -> Any:
    """A blake2b over the log's first ``parsed.offset`` bytes if they are still the bytes parsed
    (the log was only appended to since), else None. Hashing reads the log once
    (~0.1 s per 100 MB); parsing it again would cost ten times that."""
    hasher = hashlib.blake2b()
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
    """Loads only what an index holds (journal entries, builtins): nothing else can be constructed."""

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name in ("DoneEntry", "OutcomeEntry", "_ParsedLog"):
            return globals()[name]
        raise pickle.UnpicklingError(f"{module}.{name} does not belong in a journal index")


def _index_path(log_path: Path) -> Path:
    return log_path.with_name(INDEX_NAME)


def _load_index(log_path: Path) -> _ParsedLog | None:
    """The entries parsed from the start of ``log_path`` by an earlier process, if its index is readable.

    Only a cache: it is checked against the log (same file, same bytes where it stopped)
    and ignored when anything is off, so deleting it is always safe.
    """
    try:
        with open(_index_path(log_path), "rb") as handle:
            version, parsed = _IndexUnpickler(handle).load()
    except Exception:  # noqa: BLE001 - a missing, old or damaged cache is simply not used
        return None
    return parsed if version == INDEX_VERSION and isinstance(parsed, _ParsedLog) else None


def _save_index(log_path: Path, parsed: _ParsedLog) -> None:
    """Write the index (temp file + rename, so readers see the old one or the new one)."""
    target = _index_path(log_path)
    tmp = temp_name(target)
    try:
        with open(tmp, "wb") as handle:
            pickle.dump((INDEX_VERSION, parsed), handle, protocol=pickle.HIGHEST_PROTOCOL)
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
