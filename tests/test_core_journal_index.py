"""The journal index beside log.txt: a checked cache of the stage logs, never the record.

A missing, stale (appended to, rewritten), truncated, other-version, foreign or
partly damaged index is noticed and the log parsed instead; an unchanged log is
not even read again; entries read through the index equal the parsed lines."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import whcore.journal as journal_module
from whcore.journal import (INDEX_MAGIC, INDEX_VERSION, Journal, parse_done_line, read_journal, setup_logging,
                            source_unit, stage_log)
from whcore.workspace import Workspace, open_workspace

UNITS = ("a", "b", "c")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A workspace whose log has a DONE line per unit (each listing one hashed file) and one FAILED line,
    and an index written after them."""
    monkeypatch.setattr(journal_module, "INDEX_MIN_NEW_LINES", 1)
    journal_module._PARSED.clear()
    workspace = open_workspace(tmp_path, create=True)
    setup_logging(workspace, "segment")
    journal = Journal(workspace, "segment")
    for name in UNITS:
        path = workspace.root / f"{name}.jsonl"
        path.write_text(f'{{"unit": "{name}"}}\n')
        journal.mark_done(source_unit(name), {"window_s": 10.0, "audio": name}, hashed=[path],
                          extra={"seconds": 1.5})
    journal.mark_failed(source_unit("broken"), "not audio")
    read_journal(workspace.log_path)  # parses and writes the index
    assert index_path(workspace).is_file()
    yield workspace
    journal_module._PARSED.clear()


def index_path(workspace: Workspace) -> Path:
    return workspace.logs_dir / ".journal-index"


def new_process() -> None:
    journal_module._PARSED.clear()


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    parsed: list[str] = []
    real = journal_module.parse_journal_line
    monkeypatch.setattr(journal_module, "parse_journal_line", lambda line: parsed.append(line) or real(line))
    return parsed


def units_done(workspace: Workspace) -> dict[str, bool]:
    journal = Journal(workspace, "segment")
    return {unit: journal.is_done(unit, {"window_s": 10.0, "audio": unit.split(":")[1]}) for unit in journal.entries()}


def test_an_unchanged_log_is_neither_parsed_nor_hashed_again(workspace: Workspace, monkeypatch) -> None:
    new_process()
    parsed = count_parses(monkeypatch)
    monkeypatch.setattr(journal_module, "_prefix_hasher", lambda *args: pytest.fail("an unchanged log was hashed"))
    assert all(units_done(workspace).values()) and len(units_done(workspace)) == 3
    assert parsed == []


def test_entries_read_through_the_index_equal_the_parsed_lines(workspace: Workspace) -> None:
    lines = workspace.log_path.read_text(encoding="utf-8").splitlines()
    parsed = {e.unit: e for e in map(parse_done_line, lines) if e is not None}
    new_process()
    journal = Journal(workspace, "segment")
    from_index = dict(journal.entries().items())
    assert from_index == parsed and {u: journal.entries()[u] for u in parsed} == parsed
    assert from_index[source_unit("a")].extra == {"seconds": 1.5}
    assert from_index[source_unit("a")].options == {"window_s": 10.0, "audio": "a"}
    assert set(journal.outcomes()) == {source_unit("broken")}
    assert len(read_journal(workspace.log_path)) == 4  # every line, in order, read from the log itself


@pytest.mark.parametrize("damage", ["missing", "truncated", "other version", "foreign class", "not a journal",
                                    "damaged stage", "wrong columns"])
def test_a_damaged_index_is_ignored_and_the_log_parsed(workspace: Workspace, monkeypatch, damage: str) -> None:
    index = index_path(workspace)
    data = index.read_bytes()
    magic, version, head, stages = pickle.loads(data)
    if damage == "missing":
        index.unlink()
    elif damage == "truncated":
        index.write_bytes(data[: len(data) // 2])
    elif damage == "other version":
        index.write_bytes(pickle.dumps((magic, INDEX_VERSION - 1, head, stages)))
    elif damage == "foreign class":
        index.write_bytes(pickle.dumps((INDEX_MAGIC, INDEX_VERSION, head, {"segment": Path("x")})))
    elif damage == "not a journal":
        index.write_bytes(pickle.dumps(("something else", INDEX_VERSION, head, stages)))
    elif damage == "damaged stage":
        index.write_bytes(pickle.dumps((magic, version, head, {"segment": stages["segment"][:40]})))
    else:
        columns = pickle.loads(stages["segment"])
        columns["done_unit"] = columns["done_unit"][:1]
        index.write_bytes(pickle.dumps((magic, version, head, {"segment": pickle.dumps(columns)})))
    new_process()
    parsed = count_parses(monkeypatch)
    assert units_done(workspace) == {source_unit(name): True for name in UNITS}
    assert len(parsed) >= 4  # the log was read, not the index


def test_a_log_appended_to_parses_only_the_new_lines_and_a_rewritten_one_all(workspace: Workspace,
                                                                            monkeypatch) -> None:
    new_process()
    Journal(workspace, "segment").mark_done(source_unit("d"), {"window_s": 10.0, "audio": "d"})
    new_process()
    parsed = count_parses(monkeypatch)
    assert set(Journal(workspace, "segment").entries()) == {source_unit(n) for n in (*UNITS, "d")}
    assert len(parsed) == 1
    text = workspace.log_path.read_text(encoding="utf-8")
    workspace.log_path.write_text(text.replace("source:a ", "source:z "), encoding="utf-8")  # same size
    new_process()
    assert source_unit("z") in Journal(workspace, "segment").entries()
    assert source_unit("a") not in Journal(workspace, "segment").entries()


def test_a_file_changed_since_the_index_is_caught_by_size_and_sha256(workspace: Workspace) -> None:
    (workspace.root / "a.jsonl").write_text('{"unit": "A"}\n')  # same size, other bytes, new time
    (workspace.root / "b.jsonl").write_text('{"unit": "bb"}\n')
    (workspace.root / "c.jsonl").unlink()
    new_process()
    journal = Journal(workspace, "segment")
    params = {"window_s": 10.0}
    assert journal.stale_reason(source_unit("a"), {**params, "audio": "a"}) == "a.jsonl changed content (sha256)"
    assert journal.stale_reason(source_unit("b"), {**params, "audio": "b"}).startswith("b.jsonl changed size")
    assert journal.stale_reason(source_unit("c"), {**params, "audio": "c"}) == "c.jsonl is missing"


def test_a_journal_keeps_what_it_read_while_later_lines_arrive(workspace: Workspace) -> None:
    new_process()
    first = Journal(workspace, "segment")
    other = Journal(workspace, "segment")
    other.mark_done(source_unit("late"), {"w": 1})
    other.mark_failed(source_unit("a"), "disk full")  # after its DONE line: the DONE still counts for a rerun
    later = Journal(workspace, "segment")
    assert source_unit("late") not in first.entries() and source_unit("late") in later.entries()
    assert later.is_done(source_unit("a"), {"window_s": 10.0, "audio": "a"})
    assert later.outcomes()[source_unit("a")].reason == "disk full"
    assert source_unit("a") not in first.outcomes()
    log = stage_log(workspace.log_path, "segment")
    assert log.latest(source_unit("a")).outcome == "FAILED"  # status counts the latest line


def test_entries_are_a_view_that_marking_while_walking_it_does_not_break(workspace: Workspace) -> None:
    new_process()
    journal = Journal(workspace, "segment")
    entries = journal.entries()
    journal.mark_done(source_unit("new"), {"w": 1})
    assert source_unit("new") in entries and entries[source_unit("new")].params == journal.entries()[
        source_unit("new")].params
    walked = []
    for unit in entries:  # marking on while walking the view, as a stage may
        walked.append(unit)
        if not unit.endswith("-copy"):
            journal.mark_done(f"{unit}-copy", {"w": 1})
    assert walked[:4] == [source_unit(n) for n in (*UNITS, "new")]
    assert len(entries) == len(list(entries)) == 2 * (len(UNITS) + 1)
    assert set(journal.source_entries()) == {*UNITS, "new", *(f"{n}-copy" for n in (*UNITS, "new"))}
