"""Benchmark ``python -m segment`` against bare ffmpeg and the seed's pydub cutting.

    .venv/bin/python bench/segment.py             # 1 h AAC 44.1 kHz stereo
    .venv/bin/python bench/segment.py --hours 10  # memory must stay flat

The input (the committed espeak lecture looped to the length, AAC 44.1 kHz
stereo) is generated once and cached under ``bench/out/``. In the same run it
measures, each ``--repeat`` times (the fastest run counts, since the other
runs only add noise from a shared machine):

- baseline: bare ffmpeg decoding the file to 16 kHz mono s16le into /dev/null;
- segment: ``python -m segment`` on a fresh workspace holding that file;
- seed: ffmpeg to a 16 kHz wav, pydub loads it whole, exports every window.

Wall time and the peak RSS of the whole process tree (sum over the process
and its children, polled from /proc) are printed with the ratios the issue
sets as goals: segment / ffmpeg <= 1.3 and segment peak RSS <= 150 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from whcore.media import ffmpeg_executable

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
EXAMPLE = REPO / "examples" / "espeak_lecture.opus"
POLL_SECONDS = 0.01
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20
GOAL_RATIO = 1.3
GOAL_RSS_MIB = 150

PYDUB_CUT = """
import sys
from pydub import AudioSegment
wav, out, window_ms, hop_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
audio = AudioSegment.from_wav(wav)
start = 0
while start < len(audio):
    end = min(start + window_ms, len(audio))
    audio[start:end].export(f"{out}/w_{start}_{end}.wav", format="wav")
    if end == len(audio):
        break
    start += hop_ms
"""


@dataclass(frozen=True)
class Measure:
    wall_s: float
    peak_rss_mib: float  # peak of the RSS summed over the process tree
    cpu_s: float  # user + sys of the whole process tree: what a busy machine makes you pay
    peaks_by_program: dict[str, float]  # peak RSS per program name (python, ffmpeg), MiB


def ffmpeg() -> str:
    return ffmpeg_executable()


def make_input(hours: float) -> Path:
    """The looped lecture as AAC 44.1 kHz stereo; longer inputs are stream copies of the 1 h one."""
    OUT.mkdir(parents=True, exist_ok=True)
    one_hour = OUT / "lecture_1h.m4a"
    if not one_hour.exists():
        print("generating 1 h AAC 44.1 kHz stereo input (once)...", flush=True)
        tmp = one_hour.with_suffix(".tmp.m4a")
        subprocess.run([ffmpeg(), "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(EXAMPLE),
                        "-t", "3600", "-ac", "2", "-ar", "44100", "-c:a", "aac", "-b:a", "96k", str(tmp)],
                       check=True)
        tmp.rename(one_hour)
    if hours == 1:
        return one_hour
    path = OUT / f"lecture_{hours:g}h.m4a"
    if not path.exists():
        print(f"generating {hours:g} h input by stream copy (once)...", flush=True)
        listing = OUT / "concat.txt"
        listing.write_text(f"file '{one_hour.name}'\n" * int(hours))
        tmp = path.with_suffix(".tmp.m4a")
        subprocess.run([ffmpeg(), "-nostdin", "-v", "error", "-y", "-f", "concat", "-safe", "0",
                        "-i", str(listing), "-c", "copy", str(tmp)], check=True)
        tmp.rename(path)
    return path


def tree_rss_bytes(pid: int) -> dict[str, int]:
    """Current RSS of ``pid`` and all its descendants, summed per program name."""
    by_program: dict[str, int] = {}
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/comm") as handle:
                program = handle.read().strip()
            with open(f"/proc/{current}/statm") as handle:
                by_program[program] = by_program.get(program, 0) + int(handle.read().split()[1]) * PAGE_BYTES
            with open(f"/proc/{current}/task/{current}/children") as handle:
                stack.extend(int(child) for child in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return by_program


def measure(command: list[str], **kwargs) -> Measure:  # noqa: ANN003 - passed to Popen
    """Run ``command``; wall time and the peak RSS of its process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, **kwargs)
    peak = 0
    peaks: dict[str, int] = {}
    while process.poll() is None:
        sample = tree_rss_bytes(process.pid)
        peak = max(peak, sum(sample.values()))
        for program, rss in sample.items():
            peaks[program] = max(peaks.get(program, 0), rss)
        time.sleep(POLL_SECONDS)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise SystemExit(f"failed ({process.returncode}): {' '.join(command)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measure(wall, peak / MIB, cpu, {program: rss / MIB for program, rss in peaks.items()})


def bare_ffmpeg(audio: Path) -> Measure:
    return measure([ffmpeg(), "-nostdin", "-v", "error", "-i", str(audio), "-vn", "-ac", "1", "-ar", "16000",
                    "-f", "s16le", "-acodec", "pcm_s16le", "-y", "/dev/null"])


def fresh_workspace(audio: Path, name: str) -> Path:
    workspace = OUT / name
    shutil.rmtree(workspace, ignore_errors=True)
    (workspace / "sources" / "audio").mkdir(parents=True)
    link = workspace / "sources" / "audio" / audio.name
    link.symlink_to(audio)
    record = {"source_id": "bench", "extractor": "local", "original_id": str(audio), "url": audio.as_uri(),
              "audio_path": f"sources/audio/{audio.name}", "license": "user-provided"}
    (workspace / "sources" / "bench.json").write_text(json.dumps(record))
    return workspace


def our_segment(audio: Path, window: float, overlap: float) -> tuple[Measure, int]:
    workspace = fresh_workspace(audio, "ws")
    result = measure([sys.executable, "-m", "segment", "--workspace", str(workspace), "--window", str(window),
                      "--overlap", str(overlap)], cwd=REPO, stderr=subprocess.DEVNULL)
    count = len(list((workspace / "windows" / "bench").glob("*.wav")))
    shutil.rmtree(workspace)
    return result, count


def seed_pydub(audio: Path, window: float, overlap: float) -> Measure:
    folder = OUT / "pydub"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    wav = folder / "full.wav"
    script = (f"import subprocess, sys\n"
              f"subprocess.run({[ffmpeg(), '-nostdin', '-v', 'error', '-i', str(audio), '-ac', '1', '-ar', '16000', '-y', str(wav)]!r}, check=True)\n"
              f"sys.argv = ['cut', {str(wav)!r}, {str(folder)!r}, '{round(window * 1000)}', "
              f"'{round((window - overlap) * 1000)}']\n" + PYDUB_CUT)
    result = measure([sys.executable, "-c", script])
    shutil.rmtree(folder)
    return result


def best(runs: list[Measure]) -> Measure:
    """Fastest wall and cpu, highest memory: noise from a shared machine only ever adds time."""
    programs = {program for r in runs for program in r.peaks_by_program}
    return Measure(min(r.wall_s for r in runs), max(r.peak_rss_mib for r in runs), min(r.cpu_s for r in runs),
                   {p: max(r.peaks_by_program.get(p, 0.0) for r in runs) for p in sorted(programs)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=1.0, help="input length in hours (whole hours)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (fastest counts)")
    parser.add_argument("--window", type=float, default=10.0, help="window seconds")
    parser.add_argument("--overlap", type=float, default=2.0, help="overlap seconds")
    parser.add_argument("--skip-pydub", action="store_true", help="leave out the seed-style figures")
    args = parser.parse_args()
    audio = make_input(args.hours)
    print(f"input: {audio} ({audio.stat().st_size / MIB:.0f} MiB, {args.hours:g} h, AAC 44.1 kHz stereo); "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    baseline, ours, seed, counts = [], [], [], set()
    for _ in range(args.repeat):
        baseline.append(bare_ffmpeg(audio))
        measured, count = our_segment(audio, args.window, args.overlap)
        ours.append(measured)
        counts.add(count)
        if not args.skip_pydub:
            seed.append(seed_pydub(audio, args.window, args.overlap))
    rows = [("ffmpeg decode (baseline)", baseline), ("segment", ours)]
    if seed:
        rows.append(("seed pydub (ffmpeg->wav, load, export)", seed))
    for name, runs in rows:
        walls = ", ".join(f"{r.wall_s:.2f}" for r in runs)
        summary = best(runs)
        programs = ", ".join(f"{p} {rss:.0f}" for p, rss in summary.peaks_by_program.items() if rss >= 1)
        print(f"{name:40s} wall {summary.wall_s:6.2f} s  (runs: {walls})  cpu {summary.cpu_s:6.2f} s  "
              f"peak RSS {summary.peak_rss_mib:6.1f} MiB  ({programs})")
    ratio = best(ours).wall_s / best(baseline).wall_s
    print(f"windows written: {sorted(counts)}; load now {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"segment / ffmpeg cpu ratio: {best(ours).cpu_s / best(baseline).cpu_s:.2f}  (what a fully busy machine "
          "would see; the wall ratio overlaps decoding with cutting on a second core)")
    print(f"segment / ffmpeg wall ratio: {ratio:.2f}  (goal <= {GOAL_RATIO})  {'OK' if ratio <= GOAL_RATIO else 'MISSED'}")
    rss = best(ours).peak_rss_mib
    print(f"segment peak RSS (process tree): {rss:.1f} MiB  (goal <= {GOAL_RSS_MIB})  "
          f"{'OK' if rss <= GOAL_RSS_MIB else 'MISSED'}")
    if seed:
        print(f"seed pydub / segment: wall {best(seed).wall_s / best(ours).wall_s:.2f}x, "
              f"peak RSS {best(seed).peak_rss_mib / rss:.1f}x")


if __name__ == "__main__":
    main()
