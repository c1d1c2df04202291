"""harvest against a loopback "YouTube": licence gate, failures, dedupe, reruns, resume, subtitles.

Real yt-dlp, real HTTP, real ffmpeg-made media; only the site is fake (the
``ytfake`` plugin in ``tests/ytfake``, loaded by yt-dlp's plugin mechanism).
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ytfake.harness import harvest_command, harvest_env, journal_lines, run_harvest, sine_audio, REPO
from ytfake.server import CC_LICENSE, PRIVATE_ERROR, REMOVED_ERROR, FakeTube, FakeTubeServer

ODD_TITLE = "🎵 ../../etc/passwd a/b\\c CON:*?<>| NUL.txt"
MANUAL_EN = "WEBVTT\n\n00:00.000 --> 00:01.000\nhello from the creator\n"
AUTO_EN = "WEBVTT\n\n00:00.000 --> 00:01.000\nhello from the machine\n"
AUTO_FR = "WEBVTT\n\n00:00.000 --> 00:01.000\nbonjour machine\n"
FAST = ("--sleep", "0", "--retries", "1")


@pytest.fixture(scope="module")
def tones() -> dict[str, bytes]:
    return {name: sine_audio(freq) for name, freq in
            {"a": 440, "b": 520, "c": 610, "d": 700, "e": 830}.items()}


def records(workspace: Path) -> dict[str, dict]:
    manifest = workspace / "sources" / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    return {row["source_id"]: row for row in rows}


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def media_requests(tube: FakeTube) -> list[str]:
    return tube.paths("/ytfake/media/")


def test_mixed_playlists_gate_failures_dedupe_and_rerun(tmp_path: Path, tones: dict[str, bytes]) -> None:
    tube = FakeTube()
    tube.add_video("ccOne", tones["a"])
    tube.add_video("ccTwo", tones["b"])
    tube.add_video("notCC", tones["c"], license=None)
    tube.add_video("private1", None, error=PRIVATE_ERROR)
    tube.add_video("removed1", None, error=REMOVED_ERROR)
    tube.add_video("media404", None)
    tube.add_video("corrupt1", None)
    tube.media["corrupt1.webm"] = b"\x1aE\xdf\xa3 this is not a real webm file" * 64
    tube.add_video("odd_title", tones["d"], title=ODD_TITLE)
    tube.add_video("reupload", tones["b"])  # same bytes as ccTwo under another id
    tube.add_video("ccThree", tones["e"])
    tube.playlists["PL1"] = ["ccOne", "ccTwo", "notCC", "private1", "removed1", "media404", "corrupt1",
                             "odd_title"]
    tube.playlists["PL2"] = ["ccOne", "reupload", "ccThree"]
    workspace = tmp_path / "ws"
    with FakeTubeServer(tube) as server:
        first = run_harvest(server.playlist_url("PL1"), "--workspace", workspace, "--jobs", "2", *FAST)
        assert first.returncode == 0, first.stderr
        sources = workspace / "sources"
        assert sorted(p.name for p in (sources / "audio").iterdir()) == [
            "ccOne.webm", "ccTwo.webm", "odd_title.webm"]
        assert (sources / "audio" / "ccOne.webm").read_bytes() == tones["a"]
        found = records(workspace)
        assert set(found) == {"ccOne", "ccTwo", "odd_title"}
        assert found["ccOne"]["license"] == CC_LICENSE
        assert found["ccOne"]["channel"] == "Fake Channel" and found["ccOne"]["extractor"] == "YtFake"
        assert found["ccOne"]["sha256"] == hashlib.sha256(tones["a"]).hexdigest()
        assert found["odd_title"]["title"] == ODD_TITLE
        assert not any("-muxed" in path for path in media_requests(tube)), "muxed video was fetched"
        log = (workspace / "logs" / "log.txt").read_text(encoding="utf-8")
        assert "rejected notCC: licence 'none stated'" in log
        assert "failed private1" in log and "Private video" in log
        assert "failed removed1" in log and "removed by the uploader" in log
        assert "failed media404" in log and "404" in log
        assert "failed corrupt1: corrupt media" in log
        rejected = [json.loads(line) for line in (sources / "rejected.jsonl").read_text().splitlines()]
        assert [(r["id"], r["reason"]) for r in rejected] == [("notCC", "license")]
        assert "failed" in first.stdout and "downloaded      3" in first.stdout
        assert not [p for p in workspace.rglob("*") if "passwd" in p.name or "🎵" in p.name]
        assert not list((sources / "audio").glob("corrupt1*")), "corrupt media kept as a source"

        tube.requests.clear()
        dead_link = f"{server.base}/no-such-page"
        second = run_harvest(dead_link, server.playlist_url("PL2"), "--workspace", workspace, *FAST)
        assert second.returncode == 0, second.stderr
        assert "HTTP Error 404" in journal_lines(workspace, f"failed {dead_link}: ")[0]
        assert "/ytfake/api/video/ccOne" not in tube.paths("/ytfake/api/video/")
        assert set(records(workspace)) == {"ccOne", "ccTwo", "odd_title", "ccThree"}
        assert "skipped reupload: duplicate of source ccTwo" in (workspace / "logs" / "log.txt").read_text()
        assert not (sources / "audio" / "reupload.webm").exists()

        before = mtimes(sources)
        tube.requests.clear()
        third = run_harvest(server.playlist_url("PL1"), server.playlist_url("PL2"), "--workspace", workspace,
                            *FAST)
        assert third.returncode == 0, third.stderr
        finished_or_rejected = ["ccOne", "ccTwo", "odd_title", "ccThree", "notCC", "reupload"]
        extracted = tube.paths("/ytfake/api/video/")
        assert not [p for p in extracted if p.rsplit("/", 1)[1] in finished_or_rejected], extracted
        assert not [p for p in media_requests(tube) if p.split("/")[-1].split(".")[0] in finished_or_rejected]
        assert mtimes(sources) == before, "a finished output was rewritten"
        assert len(journal_lines(workspace, "skipped ccOne: already have it")) == 3  # run 2 once, run 3 per playlist

        tube.videos["notCC"]["license"] = CC_LICENSE  # the uploader switched to CC
        recheck = run_harvest(server.playlist_url("PL1"), "--workspace", workspace, "--recheck-rejected", *FAST)
        assert recheck.returncode == 0, recheck.stderr
        assert "notCC" in records(workspace)
        assert (sources / "rejected.jsonl").read_text().count("notCC") == 0


def wait_for_part(part: Path, size: int, process: subprocess.Popen) -> None:
    """Wait until the download's .part file holds ``size`` bytes (the process still running)."""
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size >= size):
        assert process.poll() is None, "harvest finished before it could be stopped"
        assert time.monotonic() < deadline, "download never got that far"
        time.sleep(0.02)


def test_busy_workspace_refused_then_killed_download_resumes_with_range(tmp_path: Path) -> None:
    big = sine_audio(330, seconds=30, bitrate="128k")  # ~480 KB, about 6 s when throttled
    tube = FakeTube()
    tube.add_video("longtalk", big)
    tube.throttled.add("longtalk.webm")
    workspace = tmp_path / "ws"
    part = workspace / "sources" / ".partial" / "longtalk.webm.part"
    with FakeTubeServer(tube) as server:
        url = server.watch_url("longtalk")
        interrupted = subprocess.Popen(harvest_command(url, "--workspace", workspace, *FAST), cwd=REPO,
                                       env=harvest_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True)
        wait_for_part(part, 16 * 1024, interrupted)
        interrupted.send_signal(signal.SIGINT)  # Ctrl-C: stops at once, keeps the .part
        assert interrupted.wait(timeout=20) == 130, interrupted.communicate()[1]
        assert "rerun the same command to resume" in interrupted.communicate()[1]
        process = subprocess.Popen(harvest_command(url, "--workspace", workspace, *FAST), cwd=REPO,
                                   env=harvest_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_part(part, part.stat().st_size + 16 * 1024, process)
        concurrent = run_harvest(url, "--workspace", workspace, *FAST)
        assert concurrent.returncode == 2 and "is busy" in concurrent.stderr, concurrent.stderr
        assert process.poll() is None, "download finished before the kill: slow the server down"
        process.send_signal(signal.SIGKILL)
        process.wait()
        kept = part.stat().st_size
        assert 0 < kept < len(big)
        assert not (workspace / "sources" / "audio" / "longtalk.webm").exists()
        earlier = [r.range for r in tube.requests if r.path == "/ytfake/media/longtalk.webm"]
        assert earlier[0] is None and earlier[1].startswith("bytes=") and len(earlier) == 2, earlier
        tube.requests.clear()
        tube.throttled.clear()
        resumed = run_harvest(url, "--workspace", workspace, *FAST)
        assert resumed.returncode == 0, resumed.stderr
    ranges = [r.range for r in tube.requests if r.path.startswith("/ytfake/media/longtalk.webm")]
    assert ranges and all(r is not None for r in ranges), ranges
    assert int(ranges[0].split("=")[1].split("-")[0]) >= kept - 1024 > 0  # continued, not restarted
    audio = workspace / "sources" / "audio" / "longtalk.webm"
    assert audio.read_bytes() == big
    assert not part.exists()
    assert records(workspace)["longtalk"]["sha256"] == hashlib.sha256(big).hexdigest()


def test_subtitles_manual_versus_automatic(tmp_path: Path, tones: dict[str, bytes]) -> None:
    tube = FakeTube()
    tube.add_video("subbed", tones["a"], manual_subs={"en": MANUAL_EN}, auto_subs={"en": AUTO_EN, "fr": AUTO_FR})
    with FakeTubeServer(tube) as server:
        manual_only = tmp_path / "manual"
        run = run_harvest(server.watch_url("subbed"), "--workspace", manual_only, "--subs", "en,fr", *FAST)
        assert run.returncode == 0, run.stderr
        subs = records(manual_only)["subbed"]["subtitles"]
        assert [(s["language"], s["kind"]) for s in subs] == [("en", "manual")]
        assert (manual_only / subs[0]["path"]).read_text() == MANUAL_EN

        with_auto = tmp_path / "auto"
        run = run_harvest(server.watch_url("subbed"), "--workspace", with_auto, "--subs", "en,fr",
                          "--auto-subs", *FAST)
        assert run.returncode == 0, run.stderr
        subs = {s["language"]: s for s in records(with_auto)["subbed"]["subtitles"]}
        assert {lang: s["kind"] for lang, s in subs.items()} == {"en": "manual", "fr": "automatic"}
        assert (with_auto / subs["en"]["path"]).read_text() == MANUAL_EN  # manual wins over automatic
        assert (with_auto / subs["fr"]["path"]).read_text() == AUTO_FR

        tube.add_video("subs404", tones["b"], manual_subs={"en": MANUAL_EN})
        del tube.subs["subs404.en.vtt"]  # listed by the site, but the fetch fails
        run = run_harvest(server.watch_url("subs404"), "--workspace", with_auto, "--subs", "en", *FAST)
        assert run.returncode == 0, run.stderr
    assert records(with_auto)["subs404"]["subtitles"] == []
    assert journal_lines(with_auto, "keeping the audio without subtitles")


def test_channel_nests_playlists_and_limit_caps_each_listing(tmp_path: Path, tones: dict[str, bytes]) -> None:
    tube = FakeTube()
    for name in "abcd":
        tube.add_video(f"vid_{name}", tones[name])
    tube.playlists["uploads"] = ["vid_a", "vid_b", "vid_c"]
    tube.playlists["shorts"] = ["vid_d", "vid_a"]
    tube.channels["UCchan"] = ["uploads", "shorts"]
    workspace = tmp_path / "ws"
    with FakeTubeServer(tube) as server:
        limited = run_harvest(server.channel_url("UCchan"), "--workspace", workspace, "--limit", "2", *FAST)
        assert limited.returncode == 0, limited.stderr
        assert set(records(workspace)) == {"vid_a", "vid_b", "vid_d"}
        assert "/ytfake/api/video/vid_c" not in tube.paths("/ytfake/api/video/")
        everything = run_harvest(server.channel_url("UCchan"), "--workspace", workspace, *FAST)
        assert everything.returncode == 0, everything.stderr
    assert set(records(workspace)) == {"vid_a", "vid_b", "vid_c", "vid_d"}
    assert tube.paths("/ytfake/api/video/").count("/ytfake/api/video/vid_a") == 1
