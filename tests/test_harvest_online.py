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
from ytfake.server import BOT_CHECK_ERROR, CC_LICENSE, PRIVATE_ERROR, REMOVED_ERROR, TRY_LATER_ERROR, \
    UPCOMING_ERROR, FakeTube, FakeTubeServer

ODD_TITLE = "🎵 ../../etc/passwd a/b\\c CON:*?<>| NUL.txt"
MANUAL_EN = "WEBVTT\n\n00:00.000 --> 00:01.000\nhello from the creator\n"
AUTO_EN = "WEBVTT\n\n00:00.000 --> 00:01.000\nhello from the machine\n"
AUTO_FR = "WEBVTT\n\n00:00.000 --> 00:01.000\nbonjour machine\n"
FAST = ("--sleep", "0", "--sleep-requests", "0", "--sleep-entry", "0", "--retries", "1")


@pytest.fixture(scope="module")
def tones() -> dict[str, bytes]:
    return {name: sine_audio(freq) for name, freq in
            {"a": 440, "b": 520, "c": 610, "d": 700, "e": 830, "f": 930, "g": 1040}.items()}


def records(workspace: Path) -> dict[str, dict]:
    manifest = workspace / "sources" / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    return {row["source_id"]: row for row in rows}


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def media_requests(tube: FakeTube) -> list[str]:
    return tube.paths("/ytfake/media/")


def extracted(tube: FakeTube) -> list[str]:
    """Ids whose full extraction (watch page) was requested, in order."""
    return [path.rsplit("/", 1)[1] for path in tube.paths("/ytfake/api/video/")]


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
    tube.add_video("noWatchData", tones["f"], watch_data=False)  # CC, but its licence row did not load
    tube.playlists["PL1"] = ["ccOne", "ccTwo", "notCC", "private1", "removed1", "media404", "corrupt1",
                             "odd_title", "noWatchData"]
    tube.playlists["PL2"] = ["ccOne", "reupload", "ccThree"]
    workspace = tmp_path / "ws"
    with FakeTubeServer(tube) as server:
        first = run_harvest(server.playlist_url("PL1"), "--workspace", workspace, "--jobs", "2", *FAST)
        assert first.returncode == 1, first.stderr  # media404 and corrupt1 failed; the rest went on
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
        assert "unavailable private1: " in log and "Private video" in log
        assert "unavailable removed1: " in log and "removed by the uploader" in log
        assert "failed media404" in log and "404" in log
        assert "failed corrupt1: corrupt media" in log
        assert "failed noWatchData: licence unreadable, retried next run" in log
        rejected = [json.loads(line) for line in (sources / "rejected.jsonl").read_text().splitlines()]
        assert [(r["id"], r["reason"]) for r in rejected] == [("notCC", "license")]  # not noWatchData
        unavailable = [json.loads(line) for line in (sources / "unavailable.jsonl").read_text().splitlines()]
        assert sorted(r["id"] for r in unavailable) == ["private1", "removed1"]
        assert "failed" in first.stdout and "downloaded      3" in first.stdout
        assert not [p for p in workspace.rglob("*") if "passwd" in p.name or "🎵" in p.name]
        assert not list((sources / "audio").glob("corrupt1*")), "corrupt media kept as a source"

        tube.requests.clear()
        dead_link = f"{server.base}/no-such-page"
        second = run_harvest(dead_link, server.playlist_url("PL2"), "--workspace", workspace, *FAST)
        assert second.returncode == 1, second.stderr  # the dead link failed
        assert "HTTP Error 404" in journal_lines(workspace, f"failed {dead_link}: ")[0]
        assert "/ytfake/api/video/ccOne" not in tube.paths("/ytfake/api/video/")
        assert set(records(workspace)) == {"ccOne", "ccTwo", "odd_title", "ccThree"}
        assert "skipped reupload: duplicate of source ccTwo" in (workspace / "logs" / "log.txt").read_text()
        assert not (sources / "audio" / "reupload.webm").exists()

        before = mtimes(sources)
        tube.requests.clear()
        tube.videos["noWatchData"]["watch_data"] = True  # the watch page loads this time
        third = run_harvest(server.playlist_url("PL1"), server.playlist_url("PL2"), "--workspace", workspace,
                            *FAST)
        assert third.returncode == 1, third.stderr  # media404 and corrupt1 still fail
        finished_or_rejected = ["ccOne", "ccTwo", "odd_title", "ccThree", "notCC", "reupload", "private1",
                                "removed1"]
        assert not set(extracted(tube)) & set(finished_or_rejected), extracted(tube)
        assert "noWatchData" in extracted(tube) and "noWatchData" in records(workspace)
        assert not [p for p in media_requests(tube) if p.split("/")[-1].split(".")[0] in finished_or_rejected]
        changed = {name for name, stamp in mtimes(sources).items() if before.get(name) != stamp}
        assert changed <= {"manifest.jsonl", "noWatchData.json", "audio/noWatchData.webm"}, changed
        assert len(journal_lines(workspace, "skipped ccOne: already have it")) == 3  # run 2 once, run 3 per playlist

        tube.videos["notCC"]["license"] = CC_LICENSE  # the uploader switched to CC
        tube.videos["private1"] = {**tube.videos["ccThree"], "title": "now public"}
        tube.media["private1.webm"] = tones["g"]
        recheck = run_harvest(server.playlist_url("PL1"), "--workspace", workspace, "--recheck-rejected",
                              "--recheck-unavailable", *FAST)
        assert recheck.returncode == 1, recheck.stderr
        assert {"notCC", "private1"} <= set(records(workspace))
        assert '"cleared": true' in (sources / "rejected.jsonl").read_text()  # appended, not rewritten


def default_sigint() -> None:
    """Give the child Ctrl-C's default handling: a test run as a background job of a
    non-interactive shell inherits SIGINT ignored, and Python then never raises
    KeyboardInterrupt, so the download would run to its end."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
    part = workspace / "sources" / ".partial" / "longtalk.f251.webm.part"  # the format id in the name
    with FakeTubeServer(tube) as server:
        url = server.watch_url("longtalk")
        interrupted = subprocess.Popen(harvest_command(url, "--workspace", workspace, *FAST), cwd=REPO,
                                       env=harvest_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True, preexec_fn=default_sigint)
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


def test_subtitles_regional_variants_no_translations_and_missing_ones_fetched_later(
        tmp_path: Path, tones: dict[str, bytes]) -> None:
    tube = FakeTube()
    tube.add_video("subbed", tones["a"], manual_subs={"en-US": MANUAL_EN, "../../evil": MANUAL_EN},
                   auto_subs={"en": AUTO_EN}, translated_subs=True)
    tube.add_video("autoOnly", tones["b"], auto_subs={"fr": AUTO_FR}, translated_subs=True)
    with FakeTubeServer(tube) as server:
        manual_only = tmp_path / "manual"
        run = run_harvest(server.watch_url("subbed"), "--workspace", manual_only, "--subs", "en,fr", *FAST)
        assert run.returncode == 0, run.stderr
        subs = records(manual_only)["subbed"]["subtitles"]
        assert [(s["language"], s["kind"]) for s in subs] == [("en-US", "manual")]  # en matches en-US
        assert (manual_only / subs[0]["path"]).read_text() == MANUAL_EN
        assert journal_lines(manual_only, "unsafe language codes ['../../evil']")
        assert not [p for p in manual_only.rglob("*") if "evil" in p.name]

        with_auto = tmp_path / "auto"
        run = run_harvest(server.watch_url("subbed"), server.watch_url("autoOnly"), "--workspace", with_auto,
                          "--subs", "en,fr", "--auto-subs", *FAST)
        assert run.returncode == 0, run.stderr
        found = records(with_auto)
        assert [(s["language"], s["kind"]) for s in found["subbed"]["subtitles"]] == [
            ("en", "automatic"), ("en-US", "manual")]  # LANG, then LANG-*; never fr, de, es, ja: translations
        assert [(s["language"], s["kind"]) for s in found["autoOnly"]["subtitles"]] == [("fr", "automatic")]
        assert (with_auto / found["autoOnly"]["subtitles"][0]["path"]).read_text() == AUTO_FR
        assert not [p for p in tube.paths("/ytfake/subs/") if "tlang=" in p], tube.paths("/ytfake/subs/")

        tube.add_video("subs404", tones["c"], manual_subs={"en-GB": MANUAL_EN})
        del tube.subs["subs404.en-GB.vtt"]  # listed by the site, but the fetch fails
        run = run_harvest(server.watch_url("subs404"), "--workspace", with_auto, "--subs", "en", *FAST)
        assert run.returncode == 0, run.stderr
        assert records(with_auto)["subs404"]["subtitles"] == []
        assert journal_lines(with_auto, "subs404: subtitle tracks en-GB could not be fetched")
        audio = with_auto / "sources" / "audio" / "subs404.webm"
        stamp = audio.stat().st_mtime_ns

        tube.subs["subs404.en-GB.vtt"] = MANUAL_EN  # the track is back
        tube.requests.clear()
        run = run_harvest(server.watch_url("subs404"), "--workspace", with_auto, "--subs", "en", *FAST)
        assert run.returncode == 0, run.stderr
        assert tube.paths("/ytfake/subs/") == ["/ytfake/subs/subs404.en-GB.vtt"]  # only the missing track
        assert not media_requests(tube) and audio.stat().st_mtime_ns == stamp  # the audio is not fetched again
        assert [s["language"] for s in records(with_auto)["subs404"]["subtitles"]] == ["en-GB"]
        tube.requests.clear()
        again = run_harvest(server.watch_url("subs404"), "--workspace", with_auto, "--subs", "en", *FAST)
        assert again.returncode == 0 and not tube.paths("/ytfake/api/video/")  # nothing left to fetch


def test_channel_root_takes_videos_and_live_tabs_and_limit_counts_the_whole_channel(
        tmp_path: Path, tones: dict[str, bytes]) -> None:
    tube = FakeTube()
    for name in "abcde":
        tube.add_video(f"vid_{name}", tones[name])
    tube.add_channel("UCchan", "@chan", {"videos": ["vid_a", "vid_b", "vid_c"], "streams": ["vid_d", "vid_a"],
                                         "shorts": ["vid_e"]})
    workspace = tmp_path / "ws"
    with FakeTubeServer(tube) as server:
        limited = run_harvest(server.handle_url("@chan"), "--workspace", workspace, "--limit", "2", *FAST)
        assert limited.returncode == 0, limited.stderr
        assert set(records(workspace)) == {"vid_a", "vid_b"}  # 2 for the channel, not 2 per tab
        assert sorted(extracted(tube)) == ["vid_a", "vid_b"]
        everything = run_harvest(server.channel_url("UCchan"), "--workspace", workspace, "--jobs", "2", *FAST)
        assert everything.returncode == 0, everything.stderr
        assert set(records(workspace)) == {"vid_a", "vid_b", "vid_c", "vid_d"}  # Videos and Live, not Shorts
        assert not journal_lines(workspace, "skipped UCchan")  # tabs share the channel id: not "listed again"
        shorts = run_harvest(server.handle_url("@chan"), "--workspace", workspace, "--tabs", "shorts", *FAST)
        assert shorts.returncode == 0, shorts.stderr
    assert set(records(workspace)) == {"vid_a", "vid_b", "vid_c", "vid_d", "vid_e"}
    assert extracted(tube).count("vid_a") == 1


def test_listing_error_keeps_what_was_listed_and_other_sources_go_on(tmp_path: Path, tones: dict[str, bytes]) -> None:
    tube = FakeTube()
    ids = [f"v{number:02d}" for number in range(40)]  # two pages of 30 and 10
    for video_id in ids:
        tube.add_video(video_id, None, license=None)
    tube.add_video("v05", tones["a"])
    tube.add_video("v35", tones["b"])
    tube.add_video("single", tones["c"])
    tube.playlists["PLbig"] = ids
    tube.failing_pages["PLbig"] = 2  # YouTube answers the second continuation with 429
    workspace = tmp_path / "ws"
    with FakeTubeServer(tube) as server:
        run = run_harvest(server.playlist_url("PLbig"), server.watch_url("single"), "--workspace", workspace,
                          "--max-blocks", "5", *FAST)
        assert run.returncode == 1, run.stderr
        assert "Traceback" not in run.stderr
        line = journal_lines(workspace, f"listing of {server.playlist_url('PLbig')} stopped after 30 entries: ")
        assert len(line) == 1 and "429" in line[0], line
        assert set(records(workspace)) == {"v05", "single"}  # page 1 harvested, the next SOURCE too
        assert (workspace / "sources" / "manifest.jsonl").is_file()
        assert "summary: downloaded 2" in (workspace / "logs" / "log.txt").read_text(encoding="utf-8")
        del tube.failing_pages["PLbig"]
        tube.requests.clear()
        rerun = run_harvest(server.playlist_url("PLbig"), "--workspace", workspace, *FAST)
        assert rerun.returncode == 0, rerun.stderr
    assert set(records(workspace)) == {"v05", "v35", "single"}
    assert sorted(extracted(tube)) == ids[30:]  # page 1 was decided: listed again, not extracted again


def test_blocks_in_a_row_trip_the_breaker_and_the_rerun_resumes(tmp_path: Path, tones: dict[str, bytes]) -> None:
    tube = FakeTube()
    tube.add_video("cc1", tones["a"])
    tube.add_video("botcheck", None, error=BOT_CHECK_ERROR)
    tube.add_video("trylater", None, error=TRY_LATER_ERROR)
    for number in range(6):
        tube.add_video(f"n{number}", None, license=None)
    tube.blocked_videos.add("n0")  # the watch page answers HTTP 429
    tube.playlists["PL"] = ["cc1", "botcheck", "trylater", "n0", "n1", "n2", "n3", "n4", "n5"]
    workspace = tmp_path / "ws"
    run_args = ("--workspace", workspace, "--jobs", "1", *FAST)
    with FakeTubeServer(tube) as server:
        stopped = run_harvest(server.playlist_url("PL"), *run_args)
        assert stopped.returncode == 1, stopped.stderr
        line = journal_lines(workspace, "stopped: the site blocked 3 requests in a row")
        assert len(line) == 1 and "rerun the same command after" in line[0] and "UTC" in line[0], line
        assert "stopped: the site blocked 3 requests in a row" in stopped.stdout
        assert extracted(tube) == ["cc1", "botcheck", "trylater", "n0"]  # nothing after the breaker tripped
        assert set(records(workspace)) == {"cc1"} and (workspace / "sources" / "manifest.jsonl").is_file()
        assert not (workspace / "sources" / "unavailable.jsonl").exists()  # blocks are not decisions
        assert not (workspace / "sources" / "rejected.jsonl").exists()

        tube.blocked_videos.clear()
        for video_id in ("botcheck", "trylater"):
            tube.add_video(video_id, None, license=None)
        tube.requests.clear()
        resumed = run_harvest(server.playlist_url("PL"), *run_args)
        assert resumed.returncode == 0, resumed.stderr
    assert extracted(tube) == ["botcheck", "trylater", "n0", "n1", "n2", "n3", "n4", "n5"]


def test_live_upcoming_members_only_and_muxed_only(tmp_path: Path, tones: dict[str, bytes]) -> None:
    tube = FakeTube()
    tube.add_video("liveNow", tones["a"], live_status="is_live")
    tube.add_video("soon", None, live_status="is_upcoming", error=UPCOMING_ERROR)
    tube.add_video("postLive", tones["b"], live_status="post_live")
    tube.add_video("premiere", None, error=UPCOMING_ERROR)  # the listing did not say so; extraction does
    tube.add_video("members", tones["c"], availability="subscriber_only")
    tube.add_video("muxedOnly", sine_audio(610, fmt="matroska", codec="aac"), muxed_only=True)
    tube.add_video("retried", tones["d"])
    tube.fail_once.add("retried.webm")  # the media server answers 503 once
    tube.playlists["PL"] = ["liveNow", "soon", "postLive", "premiere", "members", "muxedOnly", "retried"]
    workspace = tmp_path / "ws"
    with FakeTubeServer(tube) as server:
        run = run_harvest(server.playlist_url("PL"), "--workspace", workspace, *FAST)
        assert run.returncode == 0, run.stderr + run.stdout  # all skipped by rule or downloaded
        assert sorted(extracted(tube)) == ["muxedOnly", "premiere", "retried"]  # the rest judged from the listing
        found = records(workspace)
        assert set(found) == {"muxedOnly", "retried"}
        assert found["muxedOnly"]["audio_path"] == "sources/audio/muxedOnly.mp4"
        assert journal_lines(workspace, "muxedOnly: no audio-only format, took muxed format 18")
        assert [r.range for r in tube.requests if r.path == "/ytfake/media/retried.webm"] == [None, None]
        for video_id in ("liveNow", "soon", "postLive", "premiere"):
            assert journal_lines(workspace, f"later {video_id}: "), video_id
        assert journal_lines(workspace, "unavailable members: subscriber_only")
        assert "later           4" in run.stdout and "unavail         1" in run.stdout
        tube.requests.clear()
        rerun = run_harvest(server.playlist_url("PL"), "--workspace", workspace, *FAST)
        assert rerun.returncode == 0, rerun.stderr
        assert extracted(tube) == ["premiere"]  # live ones are asked again later, members-only is not
        tube.requests.clear()
        recheck = run_harvest(server.playlist_url("PL"), "--workspace", workspace, "--recheck-unavailable", *FAST)
        assert recheck.returncode == 0 and journal_lines(workspace, "unavailable members: ")


def test_remote_feed_cannot_pull_local_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.mp3"
    secret.write_bytes(sine_audio(700, fmt="mp3", codec="libmp3lame"))
    tube = FakeTube()
    tube.feeds["evil.xml"] = (
        '<?xml version="1.0"?><rss version="2.0" xmlns:cc="http://backend.userland.com/creativeCommonsRssModule">'
        '<channel><title>t</title><link>http://example.invalid/</link><description>d</description>'
        f'<item><title>x</title><guid>leak</guid><cc:license>https://creativecommons.org/licenses/by/4.0/</cc:license>'
        f'<enclosure url="{secret.as_uri()}" type="audio/mpeg" length="1"/></item></channel></rss>')
    workspace = tmp_path / "ws"
    with FakeTubeServer(tube) as server:
        run = run_harvest(f"{server.base}/feed/evil.xml", "--workspace", workspace, *FAST)
    assert run.returncode == 1, run.stderr
    assert not (workspace / "sources" / "audio").exists() or not list((workspace / "sources" / "audio").iterdir())
    assert journal_lines(workspace, "failed ") and "file://" in " ".join(journal_lines(workspace, "failed "))


def test_a_run_where_no_watch_page_has_a_licence_field_stores_nothing_and_exits_1(tmp_path: Path) -> None:
    """yt-dlp that lost YouTube's licence row: 20 licence-less watch pages are a warning, not 20 rejections."""
    tube = FakeTube()
    lost = [f"lost{i:02d}" for i in range(20)]
    for video_id in lost:
        tube.add_video(video_id, None, license=None)  # watch page loaded, no licence field
    tube.playlists["PLlost"] = lost
    workspace = tmp_path / "ws"
    with FakeTubeServer(tube) as server:
        first = run_harvest(server.playlist_url("PLlost"), "--workspace", workspace, "--jobs", "2", *FAST)
        assert first.returncode == 1, first.stderr
        warnings = [line for line in first.stderr.splitlines() if "licence field" in line and "WARNING" in line]
        assert len(warnings) == 1 and "harvest doctor" in warnings[0] and "out of date" in warnings[0], first.stderr
        assert not (workspace / "sources" / "rejected.jsonl").exists()
        assert not journal_lines(workspace, "| REJECTED")
        assert len(journal_lines(workspace, "| FAILED ")) == 20

        # The same videos once one watch page of the run shows a licence: plain rejections, stored.
        tube.add_video("ccNew", sine_audio(440))
        tube.playlists["PLlost"] = ["ccNew", *lost]
        second = run_harvest(server.playlist_url("PLlost"), "--workspace", workspace, "--jobs", "2", *FAST)
        assert second.returncode == 0, second.stderr
        assert "harvest doctor" not in second.stderr
        assert sorted(extracted(tube)) == sorted(lost * 2 + ["ccNew"]), "the first run remembered nothing"
        rejected = [json.loads(line)["id"] for line in (workspace / "sources" / "rejected.jsonl").read_text()
                    .splitlines()]
        assert sorted(rejected) == lost


def test_a_few_licence_less_videos_are_plain_rejections(tmp_path: Path) -> None:
    tube = FakeTube()
    plain = [f"plain{i:02d}" for i in range(19)]  # one short of the suspicious count
    for video_id in plain:
        tube.add_video(video_id, None, license=None)
    tube.playlists["PLplain"] = plain
    workspace = tmp_path / "ws"
    with FakeTubeServer(tube) as server:
        result = run_harvest(server.playlist_url("PLplain"), "--workspace", workspace, "--jobs", "2", *FAST)
    assert result.returncode == 0, result.stderr
    assert "harvest doctor" not in result.stderr
    assert len((workspace / "sources" / "rejected.jsonl").read_text().splitlines()) == 19
    assert len(journal_lines(workspace, "| REJECTED")) == 19
