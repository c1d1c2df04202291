"""harvest on local sources: a file, a folder, a podcast feed; bad input; the workspace lock."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from whcore.workspace import open_workspace, workspace_lock

from ytfake.harness import REPO, journal_lines, run_harvest, sine_audio

EXAMPLE = REPO / "examples" / "espeak_lecture.opus"


def records(workspace: Path) -> dict[str, dict]:
    lines = (workspace / "sources" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["source_id"]: row for row in map(json.loads, lines)}


def test_local_file_then_rerun_skips_without_rewriting(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    first = run_harvest(EXAMPLE, "--workspace", workspace)
    assert first.returncode == 0, first.stderr
    record = records(workspace)["espeak_lecture"]
    assert record["license"] == "user-provided" and record["extractor"] == "local"
    assert 69 < record["duration"] < 71
    audio = workspace / record["audio_path"]
    assert audio.read_bytes() == EXAMPLE.read_bytes()
    stamps = {p: p.stat().st_mtime_ns for p in (workspace / "sources").rglob("*") if p.is_file()}
    second = run_harvest(EXAMPLE, "--workspace", workspace)
    assert second.returncode == 0, second.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert journal_lines(workspace, "skipped espeak_lecture: already have")
    assert len(journal_lines(workspace, "| DONE ")) == 1


def test_local_folder_recursive_with_collisions_duplicates_and_bad_files(tmp_path: Path) -> None:
    library = tmp_path / "library"
    for sub, freq in (("a", 300), ("b", 400)):
        (library / sub).mkdir(parents=True)
        (library / sub / "talk.mp3").write_bytes(sine_audio(freq, fmt="mp3", codec="libmp3lame"))
    shutil.copyfile(library / "a" / "talk.mp3", library / "copy of talk.mp3")  # same audio again
    (library / "broken.mp3").write_text("this is not audio at all\n")
    (library / "notes.txt").write_text("not media, not picked up\n")
    (library / ".hidden").mkdir()
    (library / ".hidden" / "secret.mp3").write_bytes(b"ignored")
    workspace = tmp_path / "ws"
    run = run_harvest(library, tmp_path / "missing.wav", "--workspace", workspace)
    assert run.returncode == 1, run.stderr  # some items failed; the others were processed
    found = records(workspace)
    plain = found.pop("talk")
    assert plain["original_id"] == "talk.mp3" and plain["url"] == "talk.mp3"  # never /home/<user>/...
    manifest = (workspace / "sources" / "manifest.jsonl").read_text(encoding="utf-8")
    assert str(tmp_path) not in manifest and "file:" not in manifest
    (other_id, other), = found.items()
    assert other_id == f"talk_{other['sha256'][:8]}"  # short content hash only where ids collide
    log = (workspace / "logs" / "log.txt").read_text(encoding="utf-8")
    assert "duplicate of source talk" in log
    assert f"failed {(library / 'broken.mp3').resolve()}: not audio" in log
    assert "broken" not in json.dumps(found)
    assert "missing.wav: no such file or folder" in log
    assert "secret" not in log and "notes" not in log


CC_BY = "http://creativecommons.org/licenses/by/4.0/"


def test_local_rss_feed_goes_through_the_licence_gate(tmp_path: Path) -> None:
    episodes = tmp_path / "pod"
    episodes.mkdir()
    items = []
    for number, freq, license_tag in ((1, 500, f"<cc:license>{CC_BY}</cc:license>"), (2, 600, "")):
        path = episodes / f"episode{number}.mp3"
        path.write_bytes(sine_audio(freq, fmt="mp3", codec="libmp3lame"))
        items.append(f'<item><title>Episode {number} of the show</title><guid>ep{number}</guid>{license_tag}'
                     f'<enclosure url="{path.as_uri()}" type="audio/mpeg" length="{path.stat().st_size}"/></item>')
    feed = episodes / "feed.xml"
    feed.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
                    'xmlns:cc="http://backend.userland.com/creativeCommonsRssModule"><channel><title>Pod</title>'
                    '<link>http://example.invalid/</link><description>d</description>'
                    + "".join(items) + "</channel></rss>\n", encoding="utf-8")
    workspace = tmp_path / "ws"
    gated = run_harvest(feed, "--workspace", workspace, "--sleep", "0")
    assert gated.returncode == 0, gated.stderr
    assert journal_lines(workspace, "rejected ep2: licence 'none stated'")
    found = records(workspace)
    assert list(found) == ["ep1"] and found["ep1"]["license"] == CC_BY  # the feed's own licence
    assert found["ep1"]["title"] == "Episode 1 of the show"
    assert found["ep1"]["url"] == "episode1.mp3"  # the file's name, not file:///home/<user>/...
    assert str(tmp_path) not in (workspace / "sources" / "manifest.jsonl").read_text(encoding="utf-8")
    opened = run_harvest(feed, "--workspace", workspace, "--sleep", "0", "--allow-any-license")
    assert opened.returncode == 0, opened.stderr
    found = records(workspace)
    assert sorted(found) == ["ep1", "ep2"] and found["ep2"]["license"] == ""
    assert journal_lines(workspace, "--allow-any-license: the Creative Commons gate is off")


def test_unexpected_error_on_one_file_is_one_line_and_the_run_goes_on(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "sources" / "first.json").mkdir(parents=True)  # the record cannot be written
    for name, freq in (("first", 300), ("second", 400)):
        (tmp_path / f"{name}.mp3").write_bytes(sine_audio(freq, fmt="mp3", codec="libmp3lame"))
    run = run_harvest(tmp_path / "first.mp3", tmp_path / "second.mp3", "--workspace", workspace)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    failed = journal_lines(workspace, "| ERROR   | harvest  | failed ")
    assert len(failed) == 1 and "unexpected IsADirectoryError" in failed[0], failed
    assert list(records(workspace)) == ["second"]
    assert "downloaded      1" in run.stdout and "failed          1" in run.stdout


def test_only_bad_sources_exit_non_zero_and_touch_nothing(tmp_path: Path) -> None:
    text = tmp_path / "lecture.mp3"
    text.write_text("plain text pretending to be audio\n")
    workspace = tmp_path / "ws"
    run = run_harvest(text, "--workspace", workspace)
    assert run.returncode == 1
    assert "not audio" in run.stderr
    assert not (workspace / "sources" / "audio").exists()
    assert not journal_lines(workspace, "| DONE ")


def test_invalid_arguments_give_one_error_line_and_exit_2(tmp_path: Path) -> None:
    cases = [
        ("--jobs", "0", str(EXAMPLE)),
        ("--workspace", str(tmp_path / "ws")),
        ("--cookies", str(tmp_path / "nope.txt"), str(EXAMPLE)),
        ("--cookies-from-browser", "netscape-navigator", str(EXAMPLE)),
        ("--batch-file", str(tmp_path / "nope.txt")),
        ("--auto-subs", str(EXAMPLE)),
        (str(EXAMPLE), "--workspace", str(EXAMPLE)),
        ("--subs", "en,../../x", str(EXAMPLE)),
        ("--accept-licenses", "all-rights-reserved", str(EXAMPLE)),
        ("--tabs", "community", str(EXAMPLE)),
        ("--js-runtimes", "rhino", str(EXAMPLE)),
    ]
    for args in cases:
        run = run_harvest(*args)
        assert run.returncode == 2, (args, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, run.stderr)
    assert not (tmp_path / "ws" / "sources").exists()


def test_batch_file_sources_and_comments(tmp_path: Path) -> None:
    batch = tmp_path / "batch.txt"
    batch.write_text(f"# my sources\n\n{EXAMPLE}\n   # indented comment\n", encoding="utf-8")
    workspace = tmp_path / "ws"
    run = run_harvest("--batch-file", batch, "--workspace", workspace)
    assert run.returncode == 0, run.stderr
    assert list(records(workspace)) == ["espeak_lecture"]


def test_second_run_on_a_busy_workspace_is_refused(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path / "ws", create=True)
    with workspace_lock(workspace, "harvest"):
        run = run_harvest(EXAMPLE, "--workspace", workspace.root)
    assert run.returncode == 2
    assert "is busy" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not (workspace.root / "sources").exists()
