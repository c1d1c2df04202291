"""``python -m segment`` as a user runs it: reruns, re-cuts, SIGKILL and resume, bad input, memory.

Workspaces are built by writing SourceRecord JSON files next to generated
media, so these tests need neither harvest nor the network.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from segment.decode import pcm_chunks
from whcore.journal import parse_done_line, parse_journal_line, unit_source_id
from whcore.records import WindowRecord
from whcore.window_audio import read_windows
from whcore.workspace import Workspace

SIGNALS_PATH = Path(__file__).parent / "fixtures" / "segment" / "signals.py"
_spec = importlib.util.spec_from_file_location("segment_test_signals", SIGNALS_PATH)
signals = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(signals)

RATE = 16000
KILL_SOURCES = 4  # 2 decode at once, so a kill lands with some done, some half-cut, some not started
KILL_SOURCE_SECONDS = 300
RSS_LIMIT_MIB = 150
RSS_GROWTH_LIMIT_MIB = 25  # a 30-minute source may not cost noticeably more than a 30-second one
KILL_WAIT_S = 60


def segment(python: str, workspace: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([python, "-m", "segment", "--workspace", str(workspace), *args],
                            capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"segment failed ({result.returncode}):\n{result.stderr}")
    return result


def new_workspace(root: Path, sources: dict[str, Path]) -> Path:
    """A workspace whose sources/audio holds hard links to ``sources`` (id -> media)."""
    audio = root / "sources" / "audio"
    audio.mkdir(parents=True)
    for source_id, media in sources.items():
        target = audio / f"{source_id}{media.suffix}"
        os.link(media, target)
        signals.write_source_record(root, source_id, target)
    return root


def window_files(workspace: Path) -> dict[str, bytes]:
    folder = workspace / "windows"
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def mtimes(workspace: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in (workspace / "windows").rglob("*") if p.is_file()}


def done_units(workspace: Path) -> list[str]:
    """Source ids with a segment DONE line, in log order."""
    lines = (workspace / "logs" / "log.txt").read_text(encoding="utf-8").splitlines()
    return [unit_source_id(e.unit) for e in map(parse_done_line, lines) if e is not None and e.stage == "segment"]


def outcome_reasons(workspace: Path, outcome: str) -> dict[str, str]:
    """Source id -> reason of the segment FAILED / SKIPPED lines."""
    lines = (workspace / "logs" / "log.txt").read_text(encoding="utf-8").splitlines()
    entries = [e for e in map(parse_journal_line, lines) if e is not None and e.stage == "segment"]
    return {unit_source_id(e.unit): e.reason for e in entries if getattr(e, "outcome", None) == outcome}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("segment_media")
    return {
        "short": signals.make_media(folder, "short.m4a", 30.0, 44100, 2),
        "long": signals.make_media(folder, "long.flac", KILL_SOURCE_SECONDS, 44100, 2),
    }


def test_rerun_skips_and_other_options_recut(python: str, tmp_path: Path, media: dict[str, Path]) -> None:
    workspace = new_workspace(tmp_path / "ws", {"talk": media["short"], "other": media["short"]})
    segment(python, workspace)
    before = mtimes(workspace)
    log_size = (workspace / "logs" / "log.txt").stat().st_size
    time.sleep(0.01)
    segment(python, workspace)
    assert mtimes(workspace) == before, "a rerun with the same options rewrote finished windows"
    new_log = (workspace / "logs" / "log.txt").read_text(encoding="utf-8")[log_size:]
    assert "skip talk" in new_log and "skip other" in new_log
    assert sorted(done_units(workspace)) == ["other", "talk"]

    recut = segment(python, workspace, "--window", "6", "--overlap", "1")
    assert "source:talk: redo: overlap_s changed 2.0 → 1.0; window_s changed 10.0 → 6.0" in recut.stderr
    total_ms = round(sum(len(c) for c in pcm_chunks(media["short"])) / 16)
    names = sorted(p.name for p in (workspace / "windows" / "talk").iterdir())
    assert names == [".provenance.json", "audio.flac", "windows.jsonl"]  # the source once, windows indexed
    rows = [json.loads(line) for line in (workspace / "windows" / "talk" / "windows.jsonl").read_text().splitlines()]
    assert [r["start"] for r in rows] == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    assert round(rows[-1]["end"] * 1000) == total_ms and [r["offset"] for r in rows] == [r["start"] * RATE for r in rows]

    as_wav = segment(python, workspace, "--window", "6", "--overlap", "1", "--format", "wav")
    assert "source:talk: redo: store changed flac → (unset)" in as_wav.stderr
    names = sorted(p.name for p in (workspace / "windows" / "talk").iterdir())
    assert names == sorted(["talk_0_6000.wav", "talk_5000_11000.wav", "talk_10000_16000.wav", "talk_15000_21000.wav",
                            "talk_20000_26000.wav", f"talk_25000_{total_ms}.wav", "windows.jsonl",
                            ".provenance.json"])
    assert not [p for p in (workspace / "windows").iterdir() if p.name.startswith(".")], "staging left behind"


def test_deleted_window_is_recut(python: str, tmp_path: Path, media: dict[str, Path]) -> None:
    workspace = new_workspace(tmp_path / "ws", {"talk": media["short"]})
    segment(python, workspace)
    expected = window_files(workspace)
    (workspace / "windows" / "talk" / "audio.flac").unlink()
    segment(python, workspace)
    assert window_files(workspace) == expected
    wav = new_workspace(tmp_path / "wav", {"talk": media["short"]})
    segment(python, wav, "--format", "wav")
    expected = window_files(wav)
    (wav / "windows" / "talk" / "talk_8000_18000.wav").unlink()
    segment(python, wav, "--format", "wav")
    assert window_files(wav) == expected


def wait_for(condition, timeout_s: float = KILL_WAIT_S) -> None:  # noqa: ANN001 - a predicate
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("segment finished or stalled before the moment to kill it")
        time.sleep(0.002)


def staged_bytes(workspace: Path) -> int:
    """Bytes of audio written so far into unfinished (staging) source folders."""
    folder = workspace / "windows"
    return sum(f.stat().st_size for d in folder.glob(".tmp-*") for f in d.glob("*")) if folder.is_dir() else 0


def start_segment(python: str, workspace: Path) -> subprocess.Popen:
    return subprocess.Popen([python, "-m", "segment", "--workspace", str(workspace)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_sigkill_then_rerun_gives_the_uninterrupted_output(python: str, tmp_path: Path,
                                                           media: dict[str, Path]) -> None:
    sources = {f"lecture{i}": media["long"] for i in range(KILL_SOURCES)}
    reference_ws = new_workspace(tmp_path / "reference", sources)
    segment(python, reference_ws)
    reference = window_files(reference_ws)
    assert len(reference) == KILL_SOURCES * 3  # audio.flac, windows.jsonl (38 windows), provenance

    workspace = new_workspace(tmp_path / "killed", sources)
    # Kill 1: the first sources' audio is half written, nothing is done yet.
    process = start_segment(python, workspace)
    wait_for(lambda: staged_bytes(workspace) >= 100_000)
    kill(process)
    assert done_units(workspace) == []
    # Kill 2: right after the first source is journaled done, with others mid-way.
    process = start_segment(python, workspace)
    wait_for(lambda: (workspace / "logs" / "log.txt").exists() and len(done_units(workspace)) >= 1)
    kill(process)
    finished = set(done_units(workspace))
    assert 1 <= len(finished) < KILL_SOURCES
    finished_mtimes = {k: v for k, v in mtimes(workspace).items() if Path(k).parent.name in finished}

    result = segment(python, workspace)
    assert window_files(workspace) == reference
    assert {k: v for k, v in mtimes(workspace).items() if k in finished_mtimes} == finished_mtimes
    for source_id in finished:
        assert f"skip {source_id}" in result.stderr


def test_bad_sources_are_logged_and_the_run_goes_on(python: str, tmp_path: Path, media: dict[str, Path]) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    corrupt = folder / "corrupt.mp3"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 50000, dtype=np.uint8).tobytes())
    empty = folder / "empty.m4a"
    empty.write_bytes(b"")
    silent_video = folder / "video_only.mp4"
    subprocess.run([signals.ffmpeg(), "-nostdin", "-v", "error", "-f", "lavfi", "-i", "color=c=black:s=64x64:r=5",
                    "-t", "2", "-c:v", "libx264", str(silent_video)], check=True)
    tiny = signals.write_wav(folder / "tiny.wav", signals.tone_steps(0.5, RATE), RATE)
    workspace = new_workspace(tmp_path / "ws", {"corrupt": corrupt, "empty": empty, "video_only": silent_video,
                                                "tiny": tiny, "good": media["short"]})
    missing = signals.write_source_record(workspace, "missing", workspace / "sources" / "audio" / "gone.wav")

    result = segment(python, workspace, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    failed = outcome_reasons(workspace, "FAILED")
    expected = {"corrupt": "ffmpeg could not decode", "empty": "is empty (0 bytes)",
                "video_only": "has no audio stream", "missing": "is missing"}
    assert set(failed) == set(expected), failed
    for source_id, reason in expected.items():
        assert reason in failed[source_id], (source_id, failed)
        assert f"FAILED  | segment | source:{source_id}: " in result.stderr
    assert "shorter than --min-tail 1 s" in outcome_reasons(workspace, "SKIPPED")["tiny"]  # a rule, not a failure
    assert done_units(workspace) == ["good"]
    assert len((workspace / "windows" / "good" / "windows.jsonl").read_text().splitlines()) == 4
    assert sorted(p.name for p in (workspace / "windows").iterdir()) == ["good"]
    assert missing.exists()


@pytest.mark.parametrize("args, message", [
    (["--overlap", "10"], "--overlap 10 must be smaller than --window 10"),
    (["--window", "0"], "must be greater than 0"),
    (["--overlap", "-1"], "must not be negative"),
    (["--min-tail", "-2"], "must be greater than 0"),
    (["--snap", "5"], "--snap 5 must be less than half"),
    (["--jobs", "0"], "must be greater than 0"),
])
def test_bad_arguments_exit_at_once_with_one_line(python: str, tmp_path: Path, media: dict[str, Path],
                                                  args: list[str], message: str) -> None:
    workspace = new_workspace(tmp_path / "ws", {"talk": media["short"]})
    result = segment(python, workspace, *args, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr
    assert not (workspace / "windows").exists()


def test_workspace_without_sources_is_one_clear_line(python: str, tmp_path: Path) -> None:
    result = segment(python, tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and "python -m harvest" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_snap_cuts_at_quiet_points_of_a_real_decode(python: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(40 * RATE).astype(np.float32) * 0.2
    for gap_s in (8.3, 9.8, 16.2, 17.7, 24.4, 25.6, 31.8, 34.3):  # a silent 60 ms near each cut
        noise[round(gap_s * RATE):round((gap_s + 0.06) * RATE)] = 0
    source = signals.write_wav(tmp_path / "noisy.wav", noise, RATE)
    workspace = new_workspace(tmp_path / "ws", {"noisy": source})
    segment(python, workspace, "--snap", "0.5")
    reference = np.concatenate(list(pcm_chunks(source)))
    rows = [json.loads(line) for line in (workspace / "windows" / "noisy" / "windows.jsonl").read_text().splitlines()]
    cuts = [(round(r["start"] * RATE), round(r["end"] * RATE)) for r in rows]
    assert cuts[0][0] == 0 and cuts[-1][1] == len(reference)
    windows = [WindowRecord.from_dict(row) for row in rows]
    for (start, end), samples in zip(cuts, read_windows(Workspace(workspace), windows, dtype="int16")):
        assert np.array_equal(samples, reference[start:end])
        for cut in (start, end):
            if 0 < cut < len(reference):
                assert not reference[cut - 80:cut + 80].any(), f"cut {cut / RATE:.3f} s is not in a gap"
    assert any(end - start != 10 * RATE for start, end in cuts[:-1])
    for (_, end), (next_start, _) in zip(cuts, cuts[1:]):
        assert end - next_start >= 1 * RATE  # overlap >= 2 s - 2 * 0.5 s


def peak_rss_mib(python: str, workspace: Path) -> float:
    """Largest RSS of the segment process (and its ffmpeg), from a fresh parent's RUSAGE_CHILDREN."""
    probe = ("import resource, subprocess, sys\n"
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    result = subprocess.run([python, "-c", probe, python, "-m", "segment", "--workspace", str(workspace)],
                            capture_output=True, text=True, timeout=300, check=True)
    return int(result.stdout.strip()) / 1024


def test_memory_stays_flat_on_a_long_source(python: str, tmp_path: Path, media: dict[str, Path]) -> None:
    long_flac = tmp_path / "thirty_minutes.flac"
    subprocess.run([signals.ffmpeg(), "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=16000:duration=1800", "-c:a", "flac", str(long_flac)], check=True)
    short_peak = peak_rss_mib(python, new_workspace(tmp_path / "short", {"talk": media["short"]}))
    workspace = new_workspace(tmp_path / "long", {"talk": long_flac})
    long_peak = peak_rss_mib(python, workspace)
    assert len((workspace / "windows" / "talk" / "windows.jsonl").read_text().splitlines()) == 225
    assert long_peak < RSS_LIMIT_MIB
    assert long_peak - short_peak < RSS_GROWTH_LIMIT_MIB, (short_peak, long_peak)


def test_a_rerun_reads_only_the_records_it_cannot_vouch_for(tmp_path: Path, media: dict[str, Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """An unchanged record (same inode, size and time as its DONE line recorded) is not read
    again; a rewritten one is read (and still skipped when it says the same); a changed one is
    read and its source cut again; DONE lines of earlier versions (no record signature) still hold."""
    import whcore.journal as journal_module
    from segment.cli import main
    from whcore.records import SourceRecord

    workspace = new_workspace(tmp_path / "ws", {"talk": media["short"], "other": media["short"]})
    assert main(["--workspace", str(workspace)]) == 0
    before = mtimes(workspace)
    reads: list[str] = []
    real = SourceRecord.read.__func__
    monkeypatch.setattr(SourceRecord, "read", classmethod(lambda cls, path: reads.append(Path(path).name)
                                                          or real(cls, path)))
    log = workspace / "logs" / "log.txt"

    def rerun() -> str:
        start = log.stat().st_size
        assert main(["--workspace", str(workspace)]) == 0
        return log.read_text(encoding="utf-8")[start:]

    assert "skip talk" in rerun() and reads == [] and mtimes(workspace) == before

    record = workspace / "sources" / "talk.json"
    text = record.read_text(encoding="utf-8")
    record.unlink()
    record.write_text(text, encoding="utf-8")  # same content, new inode: as harvest replaces a record
    assert "skip talk" in rerun() and reads == ["talk.json"] and mtimes(workspace) == before

    for line in log.read_text(encoding="utf-8").splitlines():  # earlier versions' DONE lines: no signature
        entry = parse_done_line(line)
        assert entry is None or entry.stage != "segment" or entry.extra.get("record")
    log.write_text(re.sub(r'"record": "[0-9:]+", ', "", log.read_text(encoding="utf-8")), encoding="utf-8")
    (workspace / "logs" / ".journal-index").unlink(missing_ok=True)
    journal_module._PARSED.clear()
    reads.clear()
    new = rerun()
    assert "skip talk" in new and "skip other" in new and sorted(reads) == ["other.json", "talk.json"]
    assert mtimes(workspace) == before

    changed = json.loads(text)
    changed["sha256"] = "0" * 64
    record.write_text(json.dumps(changed), encoding="utf-8")
    assert "source:talk: redo: sha256 changed" in rerun()
    assert done_units(workspace).count("talk") == 2 and done_units(workspace).count("other") == 1
