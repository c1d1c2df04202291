"""The journal behind logs/log.txt: namespaced units, options in clear, redo reasons, old lines, torn lines,
concurrent writers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from loguru import logger

from whcore.journal import (Journal, checkpoint_unit, parse_done_line, parse_journal_line, read_journal,
                            setup_logging, source_unit, unit_source_id, unit_step)
from whcore.workspace import open_workspace

LEGACY_LINES = [
    '2026-11-21 22:16:18.123 | DONE    | segment  | lecture {"params": "abc", "files": {}, "extra": {"windows": 3}}',
    '2026-11-21 22:16:19.000 | DONE    | label    | dataset {"params": "d1", "files": {}}',
    '2026-11-21 22:16:20.000 | DONE    | finetune | checkpoint-20 {"params": "p", "files": {}}',
]


def test_units_are_namespaced_and_a_source_named_dataset_is_not_the_dataset(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path, create=True)
    setup_logging(workspace, "label")
    journal = Journal(workspace, "label")
    journal.mark_done(source_unit("dataset"), {"model": "m"})
    assert not journal.is_done("dataset", {"model": "m"})
    journal.mark_done("dataset", {"labels": {}})
    reread = Journal(workspace, "label")
    assert set(reread.entries()) == {"source:dataset", "dataset"}
    assert set(reread.source_entries()) == {"dataset"}
    assert reread.is_done(source_unit("dataset"), {"model": "m"}) and reread.is_done("dataset", {"labels": {}})
    assert unit_source_id("source:a:b") == "a:b" and unit_step(checkpoint_unit(40)) == 40
    assert unit_step("checkpoint:x") is None and unit_source_id("dataset") is None


def test_options_are_stored_in_clear_and_a_rerun_says_which_changed(tmp_path: Path, capfd) -> None:
    workspace = open_workspace(tmp_path, create=True)
    setup_logging(workspace, "segment")
    journal = Journal(workspace, "segment")
    out = workspace.root / "a.txt"
    out.write_text("x")
    journal.mark_done(source_unit("a"), {"window_s": 10.0, "filters": {"max_cer": 0.3}}, files=[out])
    line = workspace.log_path.read_text(encoding="utf-8").splitlines()[-1]
    payload = json.loads(line.split(" | ", 3)[3].split(" ", 1)[1])
    assert payload["options"] == {"window_s": 10.0, "filters": {"max_cer": 0.3}} and payload["format"] == 2
    reread = Journal(workspace, "segment")
    assert reread.is_done(source_unit("a"), {"filters": {"max_cer": 0.3}, "window_s": 10.0})  # key order
    assert not reread.is_done(source_unit("a"), {"window_s": 5.0, "filters": {"max_cer": 0.5}})
    assert not reread.is_done(source_unit("a"), {"window_s": 5.0, "filters": {"max_cer": 0.5}})  # said once
    said = [ln for ln in capfd.readouterr().err.splitlines() if "redo" in ln]
    assert said == ["INFO    | segment | source:a: redo: filters.max_cer changed 0.3 → 0.5; "
                    "window_s changed 10.0 → 5.0"]
    out.write_text("longer")
    assert reread.stale_reason(source_unit("a"), {"window_s": 10.0, "filters": {"max_cer": 0.3}}) == \
        "a.txt changed size (1 → 6 bytes)"
    out.unlink()
    assert reread.stale_reason(source_unit("a"), {"window_s": 10.0, "filters": {"max_cer": 0.3}}) == "a.txt is missing"


def test_lines_written_before_namespaces_are_still_read(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path, create=True)
    workspace.log_path.write_text("\n".join(LEGACY_LINES) + "\n", encoding="utf-8")
    segment = Journal(workspace, "segment")
    assert set(segment.entries()) == {"source:lecture"} and segment.entries()["source:lecture"].options is None
    assert segment.is_done("source:lecture", "abc")
    assert segment.stale_reason("source:lecture", {"window_s": 10}) == \
        "options changed (the earlier run recorded only their digest)"
    assert set(Journal(workspace, "label").entries()) == {"dataset"}
    assert set(Journal(workspace, "finetune").entries()) == {"checkpoint:20"}


def test_outcome_lines_are_parsed_and_failed_units_say_why_on_retry(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path, create=True)
    setup_logging(workspace, "segment")
    journal = Journal(workspace, "segment")
    journal.mark_failed(source_unit("bad"), "ffmpeg could not decode x.mp3:\nmoov atom not found")
    journal.mark_skipped(source_unit("tiny"), "0.5 s long, shorter than --min-tail 1 s")
    journal.mark_rejected("entry:https://x/1", "not Creative Commons")
    entries = list(read_journal(workspace.log_path))
    assert [(e.unit, e.outcome) for e in entries] == [("source:bad", "FAILED"), ("source:tiny", "SKIPPED"),
                                                      ("entry:https://x/1", "REJECTED")]
    assert entries[0].reason == "ffmpeg could not decode x.mp3: moov atom not found"  # one line
    assert len(workspace.log_path.read_text(encoding="utf-8").splitlines()) == 3
    assert Journal(workspace, "segment").stale_reason(source_unit("bad"), {}) == \
        "failed last time: ffmpeg could not decode x.mp3: moov atom not found"


def test_a_torn_line_never_counts_and_the_next_writer_starts_a_fresh_line(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path, create=True)
    setup_logging(workspace, "segment")
    Journal(workspace, "segment").mark_done(source_unit("a"), {"w": 1})
    whole = workspace.log_path.read_bytes()
    workspace.log_path.write_bytes(whole + whole[: len(whole) // 2].replace(b"source:a", b"source:b"))
    assert parse_done_line(whole[: len(whole) // 2].decode()) is None
    setup_logging(workspace, "segment")
    Journal(workspace, "segment").mark_done(source_unit("c"), {"w": 1})
    lines = workspace.log_path.read_text(encoding="utf-8").splitlines()
    assert parse_journal_line(lines[-1]).unit == "source:c"
    assert set(Journal(workspace, "segment").entries()) == {"source:a", "source:c"}


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from whcore.journal import Journal, setup_logging, source_unit
    from whcore.workspace import Workspace
    workspace = Workspace(Path(sys.argv[1]))
    setup_logging(workspace, "label")
    journal = Journal(workspace, "label")
    for n in range(int(sys.argv[3])):
        journal.mark_done(source_unit(f"{sys.argv[2]}-{n}"), {"filler": "x" * 200_000})
""")


def test_concurrent_writers_never_interleave_long_lines(tmp_path: Path) -> None:
    """Label shards and finetune ranks append to one log: 200 KB lines from 3 processes stay whole."""
    workspace = open_workspace(tmp_path, create=True)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(workspace.root), f"w{i}", "8"],
                                stderr=subprocess.DEVNULL) for i in range(3)]
    assert all(p.wait(timeout=120) == 0 for p in writers)
    lines = workspace.log_path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 24 and all(parse_done_line(line) is not None for line in lines)
    assert len(Journal(workspace, "label").source_entries()) == 24


def test_a_killed_writer_mid_line_loses_only_its_own_line(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path, create=True)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(workspace.root), "k", "100000"],
                              stderr=subprocess.DEVNULL)
    while not workspace.log_path.exists() or workspace.log_path.stat().st_size < 3_000_000:
        time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    before = len(Journal(workspace, "label").entries())
    logger.remove()
    setup_logging(workspace, "label")
    Journal(workspace, "label").mark_done(source_unit("after"), {"w": 1})
    after = Journal(workspace, "label").entries()
    assert len(after) == before + 1 and "source:after" in after


def test_the_log_is_parsed_once_and_the_index_is_only_a_checked_cache(tmp_path: Path, monkeypatch) -> None:
    import pickle

    import whcore.journal as journal_module

    workspace = open_workspace(tmp_path, create=True)
    setup_logging(workspace, "segment")
    journal = Journal(workspace, "segment")
    for name in ("a", "b"):
        journal.mark_done(source_unit(name), {"window_s": 10.0})
    parsed = []
    real_parse = journal_module.parse_journal_line
    monkeypatch.setattr(journal_module, "parse_journal_line", lambda line: parsed.append(line) or real_parse(line))
    monkeypatch.setattr(journal_module, "INDEX_MIN_NEW_LINES", 1)
    journal_module._PARSED.clear()
    assert [e.unit for e in read_journal(workspace.log_path)] == ["source:a", "source:b"]
    first = len(parsed)
    assert set(Journal(workspace, "segment").entries()) == {"source:a", "source:b"}
    assert len(parsed) == first  # a second Journal parses nothing again
    journal.mark_done(source_unit("c"), {"window_s": 10.0})
    assert [e.unit for e in read_journal(workspace.log_path)][-1] == "source:c"
    assert len(parsed) == first + 1  # only the appended line
    index = workspace.logs_dir / ".journal-index"
    assert index.is_file()
    journal_module._PARSED.clear()  # a new process: the index stands in for the parse
    assert len(Journal(workspace, "segment").entries()) == 3 and len(parsed) == first + 1
    # a log rewritten in place (not appended to) is parsed again, whatever the cache says
    lines = workspace.log_path.read_text(encoding="utf-8").splitlines(keepends=True)
    workspace.log_path.write_text("".join(line.replace("source:a", "source:z") for line in lines) + lines[-1])
    assert {e.unit for e in read_journal(workspace.log_path)} == {"source:z", "source:b", "source:c"}
    # an index that would construct anything but journal entries is refused, not loaded
    journal_module._PARSED.clear()
    index.write_bytes(pickle.dumps((1, os.getcwd)))
    assert journal_module._load_index(workspace.log_path) is None
    assert len(read_journal(workspace.log_path)) == 4


def test_a_hashed_file_altered_in_place_is_caught(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path, create=True)
    setup_logging(workspace, "label")
    journal = Journal(workspace, "label")
    labels = workspace.root / "labels.jsonl"
    labels.write_text('{"text": "right"}\n')
    journal.mark_done(source_unit("a"), {"m": 1}, hashed=[labels])
    assert Journal(workspace, "label").is_done(source_unit("a"), {"m": 1})  # size and time match: not re-hashed
    labels.write_text('{"text": "wrong"}\n')  # same size, new modification time
    assert Journal(workspace, "label").stale_reason(source_unit("a"), {"m": 1}) == "labels.jsonl changed content (sha256)"
