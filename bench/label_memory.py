"""Label on long continuous speech: peak memory against source length, and windows kept with text.

Builds one source of continuous espeak-ng speech (``--hours``, default 1; a
longer source repeats the first hour's audio), takes it in with the real
``python -m harvest`` and ``python -m segment`` (10 s windows, 2 s overlap),
then runs ``python -m label --language en`` in a child process and reports:

* its peak RSS (the child's ``ru_maxrss``). Goal: <= 1.0 GiB with whisper-base
  int8, and flat: within 10 % between a 1 h and a 10 h source
  (``--hours 1 10`` measures both in one run);
* the share of windows kept with text. Every window is speech (the VAD
  ratio is printed), so each rejected or empty window is a false rejection.
  Goal: >= 98 %. The rejected windows are listed with their flags.

    .venv/bin/python bench/label_memory.py [--hours 1 10] [--workspace DIR]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402

from label_workspace import SENTENCES as PLAIN_SENTENCES, build_workspace_from_files  # noqa: E402
from whcore.atomic import read_jsonl  # noqa: E402
from whcore.media import ffmpeg_executable  # noqa: E402
from whcore.records import LabelRecord  # noqa: E402

GIB = 1024 ** 3
WORDS_PER_MINUTE = 165
SENTENCES = [line.strip() + "." for line in
             (REPO / "examples" / "espeak_lecture.txt").read_text(encoding="utf-8").replace("\n", " ").split(".")
             if line.strip()] + PLAIN_SENTENCES


def hour_of_speech(folder: Path) -> Path:
    """One hour of continuous espeak speech (sentences in shuffled orders) as a 16 kHz WAV
    (kept in ``folder`` and reused)."""
    hour = folder / "hour.wav"
    if hour.is_file():
        return hour
    words_needed = WORDS_PER_MINUTE * 60
    rng, text, words = random.Random(0), [], 0
    while words < words_needed:
        order = SENTENCES[:]
        rng.shuffle(order)
        text += order
        words += sum(len(s.split()) for s in order)
    script = folder / "hour.txt"
    script.write_text(" ".join(text), encoding="utf-8")
    return speak_hour(script, hour)


def speak_hour(script: Path, hour: Path) -> Path:
    """espeak-ng (US English, ``WORDS_PER_MINUTE``) reading ``script``: its first hour as a 16 kHz
    mono WAV at ``hour``."""
    raw = hour.with_name(hour.stem + "-espeak.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(WORDS_PER_MINUTE), "-f", str(script), "-w", str(raw)],
                   check=True)
    subprocess.run([ffmpeg_executable(), "-nostdin", "-v", "error", "-y", "-i", str(raw), "-t", "3600",
                    "-ac", "1", "-ar", "16000", str(hour)], check=True)
    raw.unlink()
    return hour


def repeated(hour: Path, hours: int, folder: Path) -> Path:
    """``hours`` copies of the hour back to back (ffmpeg concat, no re-encode)."""
    if hours == 1:
        return hour
    listing = folder / f"list{hours}.txt"
    listing.write_text("".join(f"file '{hour}'\n" for _ in range(hours)), encoding="utf-8")
    target = folder / f"speech{hours}h.wav"
    subprocess.run([ffmpeg_executable(), "-nostdin", "-v", "error", "-y", "-f", "concat", "-safe", "0",
                    "-i", str(listing), "-c", "copy", str(target)], check=True)
    return target


def tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and its descendants, KiB (0 once it is gone)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0])
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_label(root: Path) -> tuple[float, float, int]:
    """Peak RSS (bytes) and wall seconds of ``python -m label`` on ``root``, and its exit code.

    GNU time reports the child's own peak (so each run is measured alone); the RSS is also
    sampled every 2 s into ``<workspace>-rss.csv`` (seconds, MiB, labelled windows so far),
    so a run stopped early still shows whether memory grew while it went through the source.
    """
    env = dict(os.environ, PYTHONPATH=str(REPO))
    peak_file = root.parent / f"{root.name}-peak.txt"
    samples = root.parent / f"{root.name}-rss.csv"
    started = time.perf_counter()
    process = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", str(peak_file), sys.executable, "-m", "label",
                                "--workspace", str(root), "--language", "en"],
                               cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(samples, "w", encoding="utf-8") as out:
        out.write("seconds,rss_mib\n")
        while process.poll() is None:
            out.write(f"{time.perf_counter() - started:.0f},{tree_rss_kib(process.pid) / 1024:.0f}\n")
            out.flush()
            time.sleep(2)
    seconds = time.perf_counter() - started
    peak_kib = int(peak_file.read_text().split()[-1])
    return peak_kib * 1024, seconds, process.returncode


def report(root: Path, hours: int, peak: float, seconds: float) -> float:
    records = [LabelRecord.from_dict(r) for r in read_jsonl(root / "labels" / f"speech{hours}h.jsonl")]
    kept = [r for r in records if r.kept and r.text]
    flags = collections.Counter(f for r in records for f in r.flags)
    print(f"[{hours} h] {len(records)} windows, VAD speech ratio median "
          f"{statistics.median(r.speech_ratio for r in records):.2f}; label {seconds:.0f} s; "
          f"peak RSS {peak / GIB:.3f} GiB (goal <= 1.0)")
    print(f"  kept with text {len(kept)}/{len(records)} = {len(kept) / len(records):.1%} (goal >= 98%); "
          f"empty {sum(not r.text for r in records)}, re-decoded alone {sum(r.redecoded for r in records)}; "
          f"rejected by {dict(flags)}")
    for r in [r for r in records if not r.kept][:15]:
        print(f"    #{r.index} {r.start:.0f}s {r.flags} p={r.mean_word_prob} lp={r.avg_logprob} "
              f"ns={r.no_speech_prob} {r.text[:70]!r}")
    return len(kept) / len(records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=int, nargs="+", default=[1], help="source lengths to measure")
    parser.add_argument("--workspace", type=Path, default=None, help="where to build (default: a temp dir)")
    args = parser.parse_args()
    base = args.workspace or Path(tempfile.mkdtemp(prefix="label-memory-"))
    base.mkdir(parents=True, exist_ok=True)
    hour = hour_of_speech(base)
    peaks, ok = {}, True
    for hours in args.hours:
        audio = repeated(hour, hours, base)
        source = audio.with_name(f"speech{hours}h.wav")
        if not source.exists():
            os.link(audio, source)
        root = base / f"ws{hours}h"
        build_workspace_from_files(root, [source], window=10.0, overlap=2.0)
        peak, seconds, code = run_label(root)
        print(f"  load: {os.getloadavg()[0]:.2f} (1 min average, {os.cpu_count()} cores)")
        peaks[hours] = peak
        ok &= code == 0 and report(root, hours, peak, seconds) >= 0.98 and peak <= GIB
    if len(peaks) > 1:
        low, high = min(peaks.values()), max(peaks.values())
        print(f"peak RSS spread {high / low - 1:.1%} between {min(peaks)} h and {max(peaks)} h (goal <= 10%)")
        ok &= high / low - 1 <= 0.10
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
