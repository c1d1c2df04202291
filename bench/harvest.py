"""Benchmark a channel crawl: what each refused video costs, and what a rerun costs.

    .venv/bin/python bench/harvest.py                  # 1,000 videos, sleeps scaled to 2 %
    .venv/bin/python bench/harvest.py --sleep-scale 1  # the real default sleeps (about 20 minutes)

A loopback "YouTube" (the test suite's ``tests/ytfake`` server and yt-dlp
plugin, YouTube's own shapes) serves one channel of ``--videos`` entries in
two tabs (Videos and Live), paged 30 per continuation like YouTube, of which
``--cc-share`` carry the CC BY licence. Every request the server sees is
counted. In the same run, twice each on a fresh workspace:

- baseline: plain yt-dlp as a careful user would run it
  (``--match-filters license --download-archive``, the same format and sleeps);
- harvest: ``python -m harvest`` with its default politeness (request sleep,
  per-entry pause, download sleep, 2 jobs) scaled by ``--sleep-scale``.

Printed: requests per refused entry, wall time, and the second run's requests
and extractions (the goal: zero extractions of entries already decided), each
with its ratio to the baseline. The machine is shared: the wall times carry the
load average, and only ratios measured in one run compare.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGIN_DIR = REPO / "tests" / "ytfake"
sys.path[:0] = [str(REPO / "tests"), str(REPO)]  # the ytfake package and this checkout

from harvest.options import DEFAULT_JOBS, DEFAULT_SLEEP_S  # noqa: E402
from harvest.politeness import DEFAULT_SLEEP_ENTRY_S, DEFAULT_SLEEP_REQUESTS_S  # noqa: E402
from ytfake.harness import harvest_env, sine_audio  # noqa: E402
from ytfake.server import FakeTube, FakeTubeServer  # noqa: E402

TONE_SECONDS = 1.0  # each CC video is a distinct 1 s tone (distinct bytes: no dedupe)
BASE_FREQ_HZ = 200
FREQ_STEP_HZ = 7
LIVE_TAB_SHARE = 0.05  # share of the channel's videos listed in its Live tab
CHANNEL_ID = "UCbench0000000000000000"
HANDLE = "@bench"


@dataclass(frozen=True)
class Crawl:
    """One crawl's cost as the server saw it."""

    wall_s: float
    requests: int
    extractions: int  # full extractions (watch pages)
    pages: int  # listing pages
    media: int
    exit_code: int


def build_channel(videos: int, cc_share: float) -> tuple[FakeTube, int]:
    """A channel of ``videos`` entries, every ``1/cc_share``-th one CC; returns it and the CC count."""
    tube = FakeTube()
    every = max(1, round(1 / cc_share)) if cc_share > 0 else videos + 1
    ids, cc = [], 0
    for number in range(videos):
        video_id = f"bench{number:05d}"
        if number % every == 0:
            tube.add_video(video_id, sine_audio(BASE_FREQ_HZ + FREQ_STEP_HZ * cc, TONE_SECONDS))
            cc += 1
        else:
            tube.add_video(video_id, None, license=None)
        ids.append(video_id)
    live = int(videos * LIVE_TAB_SHARE)
    tube.add_channel(CHANNEL_ID, HANDLE, {"videos": ids[live:], "streams": ids[:live]})
    return tube, cc


def count(tube: FakeTube) -> Counter:
    kinds: Counter = Counter()
    for request in tube.requests:
        parts = request.path.split("/")
        kinds[parts[3] if parts[2] == "api" else parts[2]] += 1
    return kinds


def timed(tube: FakeTube, command: list[str], env: dict[str, str]) -> Crawl:
    tube.requests.clear()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    kinds = count(tube)
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stderr[-3000:])
    return Crawl(wall, len(tube.requests), kinds["video"], kinds["browse"], kinds["media"], done.returncode)


def baseline_command(url: str, folder: Path, scale: float) -> list[str]:
    """Plain yt-dlp with a licence filter and a download archive, the same sleeps harvest uses."""
    return [sys.executable, "-m", "yt_dlp", url, "--match-filters", "license", "--download-archive",
            str(folder / "archive.txt"), "-f", "bestaudio/best", "-o", str(folder / "%(id)s.%(ext)s"),
            "--sleep-requests", str(DEFAULT_SLEEP_REQUESTS_S * scale),
            "--sleep-interval", str(DEFAULT_SLEEP_S * scale), "--max-sleep-interval", str(2 * DEFAULT_SLEEP_S * scale),
            "--ignore-errors", "--no-progress", "--quiet", "--no-warnings"]


def harvest_command(url: str, workspace: Path, scale: float) -> list[str]:
    return [sys.executable, "-m", "harvest", url, "--workspace", str(workspace),
            "--sleep", str(DEFAULT_SLEEP_S * scale), "--sleep-requests", str(DEFAULT_SLEEP_REQUESTS_S * scale),
            "--sleep-entry", str(DEFAULT_SLEEP_ENTRY_S * scale), "--jobs", str(DEFAULT_JOBS)]


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def report(name: str, first: Crawl, second: Crawl, cc: int, refused: int,
           base: tuple[Crawl, Crawl] | None) -> None:
    per_refused = (first.extractions - cc) / max(1, refused)  # each CC entry is extracted once too
    line = (f"{name:<9} run 1: {first.wall_s:7.1f} s, {first.requests:5d} requests ({first.extractions} "
            f"extractions, {first.pages} pages, {first.media} media, {first.requests / first.wall_s:.1f}/s), "
            f"{per_refused:.2f} requests per refused entry; "
            f"run 2: {second.wall_s:6.1f} s, {second.requests:5d} requests, {second.extractions} extractions "
            f"[exit {first.exit_code}/{second.exit_code}]")
    print(line)
    if base is not None:
        b1, b2 = base
        print(f"{'':<9} ratio to baseline: run 1 wall {first.wall_s / b1.wall_s:.2f}x, requests "
              f"{first.requests / max(1, b1.requests):.2f}x; run 2 requests {second.requests / max(1, b2.requests):.3f}x, "
              f"extractions {second.extractions} vs {b2.extractions}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=1000, help="entries in the channel")
    parser.add_argument("--cc-share", type=float, default=0.1, help="share of CC videos")
    parser.add_argument("--sleep-scale", type=float, default=0.02,
                        help="multiply every default sleep by this (1 = the real defaults)")
    args = parser.parse_args()
    tube, cc = build_channel(args.videos, args.cc_share)
    refused = args.videos - cc
    env = harvest_env()
    print(f"channel: {args.videos} videos ({cc} CC, {refused} not), sleeps x{args.sleep_scale} of the defaults "
          f"(request {DEFAULT_SLEEP_REQUESTS_S} s, entry {DEFAULT_SLEEP_ENTRY_S} s, download {DEFAULT_SLEEP_S} s); "
          f"load before: {load()}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-harvest-"))
    try:
        with FakeTubeServer(tube) as server:
            url = server.handle_url(HANDLE)
            base_dir = scratch / "yt-dlp"
            base_dir.mkdir()
            baseline = (timed(tube, baseline_command(url, base_dir, args.sleep_scale), env),
                        timed(tube, baseline_command(url, base_dir, args.sleep_scale), env))
            print(f"load after baseline: {load()}")
            report("baseline", *baseline, cc, refused, None)
            workspace = scratch / "ws"
            first = timed(tube, harvest_command(url, workspace, args.sleep_scale), env)
            second = timed(tube, harvest_command(url, workspace, args.sleep_scale), env)
            print(f"load after harvest: {load()}")
            report("harvest", first, second, cc, refused, baseline)
            print(f"goal: zero extractions of decided entries on the second run: "
                  f"{'met' if second.extractions == 0 else f'NOT met ({second.extractions})'}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
