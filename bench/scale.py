"""What a corpus costs as it grows: segment, the dataset build, load_dataset, finetune's loader, status.

    .venv/bin/python bench/scale.py --hours 10 --hours 100      # the issue's sizes
    .venv/bin/python bench/scale.py --hours 2 --hours 6         # a quick look

For each size a fresh workspace gets ``hours`` sources of one hour each, of
speech-like audio that does not compress trivially: the committed espeak
lecture cut into random 3-12 s phrases, each at a random gain and speed
(+-10 %), with pink noise at a random 10-30 dB SNR under all of it, written as
16 kHz FLAC by this script (harvest is not measured: the source records are
written directly). Then, per size:

- segment (``python -m segment``, the FLAC store): wall time, peak RSS, files and
  bytes per audio hour under ``windows/``; one source is also cut with
  ``--format wav`` in the same run as the baseline (bytes per hour of WAV windows);
- the dataset build (label's ``build_dataset``, Parquet shards) from **generated**
  label records (texts of ~150 characters, "window N of SOURCE: " and 24 words, as
  10 s of speech has; fixed quality figures; labelling itself is
  measured by bench/label.py): the first build, an unchanged rebuild, and the
  rebuild after one more one-hour source is segmented and "labelled";
- the first ``load_dataset("<workspace>/dataset")`` (fresh cache: the conversion to
  Arrow), wall time and peak RSS;
- a pass of finetune's loader over the train split in the trainer's shuffled
  order: every pack's audio is read from the shards (no log-mel, no model),
  wall time and peak RSS;
- ``python -m status``.

Each step runs in its own process, so its peak RSS is its own. The last table
gives each cost's growth from the smallest size to the largest and a linear
projection to 10,000 h. The machine is shared: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "espeak_lecture.opus"
RATE = 16000
SOURCE_SECONDS = 3600
PHRASE_SECONDS = (3.0, 12.0)
PROJECT_HOURS = 10_000
MIB = 1 << 20


def speech_like_source(path: Path, seconds: int, seed: int, speech: np.ndarray) -> None:
    """One FLAC of random phrases of ``speech`` at random gain and speed over pink noise."""
    import soundfile

    rng = np.random.default_rng(seed)
    with soundfile.SoundFile(str(path), "w", samplerate=RATE, channels=1, format="FLAC", subtype="PCM_16") as out:
        written = 0
        while written < seconds * RATE:
            length = int(rng.uniform(*PHRASE_SECONDS) * RATE)
            start = int(rng.integers(0, len(speech) - length))
            phrase = speech[start:start + length]
            speed = rng.uniform(0.9, 1.1)
            phrase = np.interp(np.arange(0, len(phrase) - 1, speed), np.arange(len(phrase)), phrase)
            phrase = phrase * rng.uniform(0.3, 1.0)
            pause = np.zeros(int(rng.uniform(0.1, 0.8) * RATE))
            block = np.concatenate([phrase, pause])
            noise = np.cumsum(rng.standard_normal(len(block)))  # brown-ish, high-passed below
            noise = noise - np.convolve(noise, np.ones(64) / 64, "same")
            snr_db = rng.uniform(10, 30)
            scale = np.sqrt(np.mean(phrase ** 2) / max(np.mean(noise ** 2), 1e-12) / 10 ** (snr_db / 10))
            block = np.clip(block + noise * scale, -1, 1)
            block = block[:seconds * RATE - written]
            out.write((block * 32767).astype(np.int16))
            written += len(block)


def write_source(workspace: Path, source_id: str, seed: int, speech: np.ndarray) -> None:
    audio = workspace / "sources" / "audio" / f"{source_id}.flac"
    audio.parent.mkdir(parents=True, exist_ok=True)
    speech_like_source(audio, SOURCE_SECONDS, seed, speech)
    record = {"source_id": source_id, "extractor": "local", "original_id": source_id, "url": f"file:{source_id}.flac",
              "title": source_id, "audio_path": f"sources/audio/{source_id}.flac", "license": "user-provided",
              "duration": SOURCE_SECONDS}
    (workspace / "sources" / f"{source_id}.json").write_text(json.dumps(record))


CPU_SECONDS: dict[str, float] = {}  # the last measured command's user + system seconds, by its first word


def measured(command: list[str], cwd: Path = REPO) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MiB, largest process of the tree) of ``command``; its CPU seconds
    (user + system: what an overloaded shared machine does not inflate) go to ``CPU_SECONDS["last"]``."""
    probe = ("import resource, subprocess, sys, time\n"
             "t = time.perf_counter()\n"
             "r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)\n"
             "w = time.perf_counter() - t\n"
             "print(r.stdout[-3000:])\n"
             "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
             "print('@@', w, u.ru_maxrss, r.returncode, u.ru_utime + u.ru_stime)\n")
    out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, cwd=cwd,
                         env=os.environ | {"PYTHONPATH": str(REPO)}).stdout
    tail = out.rsplit("@@", 1)
    wall, rss, code, cpu = tail[1].split()
    if code != "0":
        raise RuntimeError(f"{command[:4]} failed:\n{tail[0]}")
    CPU_SECONDS["last"] = float(cpu)
    return float(wall), int(rss) / 1024, tail[0]


def tree_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


STEP = {
    # generated labels + the journal lines label would write, then the dataset build
    "label": """
import sys, json
from pathlib import Path
from whcore.workspace import open_workspace
from whcore.journal import Journal, setup_logging, source_unit
from whcore.atomic import read_jsonl, write_jsonl
from whcore.records import LabelRecord, WindowRecord
ws = open_workspace(sys.argv[1]); log = setup_logging(ws, "label"); journal = Journal(ws, "label")
WORDS = ("so today we are going to look at how the model learns from data that people "
         "recorded in rooms with noise and music and many voices talking at once about it").split() * 4
for manifest in sorted(ws.windows_dir.glob("*/windows.jsonl")):
    sid = manifest.parent.name
    if journal.is_done(source_unit(sid), {"generated": True}):
        continue
    rows = []
    for row in read_jsonl(manifest):
        w = WindowRecord.from_dict(row)
        words = WORDS[w.index % 97:w.index % 97 + 24]  # ~150 characters: what 10 s of speech says
        rows.append(LabelRecord(w.source_id, w.index, w.start, w.end, w.path, w.offset, text=f"window {w.index} of {sid}: {' '.join(words)}",
                                language="en", language_prob=0.99, avg_logprob=-0.3, mean_word_prob=0.85,
                                min_word_prob=0.4, word_count=20, speech_ratio=w.speech_ratio).to_dict())
    write_jsonl(ws.labels_path(sid), rows)
    journal.mark_done(source_unit(sid), {"generated": True}, hashed=[ws.labels_path(sid)],
                      extra={"windows": len(rows), "kept": len(rows), "seconds": sum(r["end"] - r["start"] for r in rows)})
""",
    "build": """
import sys, time
from whcore.workspace import open_workspace
from whcore.journal import Journal, setup_logging
from label.run import LabelOptions, build_dataset
ws = open_workspace(sys.argv[1]); log = setup_logging(ws, "label")
sources = sorted(u[len("source:"):] for u in Journal(ws, "label").entries() if u.startswith("source:"))
t = time.perf_counter(); build_dataset(ws, LabelOptions(language="en"), sources, log)
print("BUILD_S", time.perf_counter() - t)
""",
    "load": """
import sys, time
t = time.perf_counter()
import datasets
datasets.disable_progress_bars()
data = datasets.load_dataset(sys.argv[1], cache_dir=sys.argv[2])
print("ROWS", sum(len(s) for s in data.values()), "LOAD_S", time.perf_counter() - t)
""",
    "loader": """
import sys, time
import numpy as np
from finetune.data import load_dataset_input
from finetune.packing import pack_examples
from finetune.audio import load_audio
from finetune.order import StepOrder, pack_blocks
t = time.perf_counter()
data = load_dataset_input(sys.argv[1])
packs = pack_examples(data.splits["train"])
meta = time.perf_counter() - t
seconds = 0.0
for i in StepOrder(len(packs), 0, pack_blocks(packs)).epoch(0):
    seconds += sum(len(load_audio(e.audio_path, e.row)) for e in packs[i].examples) / 16000
print("PACKS", len(packs), "AUDIO_H", seconds / 3600, "META_S", meta, "PASS_S", time.perf_counter() - t)
""",
}


def step(name: str, *args: str) -> tuple[float, float, str]:
    return measured([sys.executable, "-c", STEP[name], *args])


def value(text: str, key: str) -> float:
    return float(text.split(key, 1)[1].split()[0])


def bench_size(hours: int, root: Path, speech: np.ndarray) -> dict[str, float]:
    ws = root / f"ws-{hours}h"
    shutil.rmtree(ws, ignore_errors=True)
    t = time.perf_counter()
    for i in range(hours):
        write_source(ws, f"src{i:05d}", i, speech)
    print(f"[{hours} h] sources generated in {time.perf_counter() - t:.0f} s", flush=True)
    r: dict[str, float] = {"hours": hours}
    r["segment_s"], r["segment_rss"], _ = measured([sys.executable, "-m", "segment", "--workspace", str(ws)])
    r["segment_cpu"] = CPU_SECONDS["last"]
    r["files"], size = tree_size(ws / "windows")
    r["mb_per_h"] = size / 1e6 / hours
    step("label", str(ws))
    r["build_s"], r["build_rss"], out = step("build", str(ws))
    r["build_cpu"] = CPU_SECONDS["last"]
    r["dataset_mb_per_h"] = tree_size(ws / "dataset")[1] / 1e6 / hours
    r["shards"] = len(list((ws / "dataset" / "data").glob("*.parquet")))
    r["unchanged_s"] = value(step("build", str(ws))[2], "BUILD_S")
    cache = root / f"hf-cache-{hours}h"
    shutil.rmtree(cache, ignore_errors=True)
    r["load_s"], r["load_rss"], out = step("load", str(ws / "dataset"), str(cache))
    r["load_cpu"] = CPU_SECONDS["last"]
    shutil.rmtree(cache, ignore_errors=True)
    r["loader_s"], r["loader_rss"], out = step("loader", str(ws / "dataset"))
    r["loader_cpu"] = CPU_SECONDS["last"]
    r["loader_audio_h"] = value(out, "AUDIO_H")
    r["status_s"], r["status_rss"], _ = measured([sys.executable, "-m", "status", "--workspace", str(ws)])
    r["status_cpu"] = CPU_SECONDS["last"]
    write_source(ws, "added", 10**6, speech)
    measured([sys.executable, "-m", "segment", "--workspace", str(ws)])
    step("label", str(ws))
    r["add_1h_s"] = value(step("build", str(ws))[2], "BUILD_S")
    print(f"[{hours} h] " + ", ".join(f"{k} {v:.3g}" for k, v in r.items()), flush=True)
    return r


def wav_baseline(root: Path, speech: np.ndarray) -> float:
    """MB per audio hour of ``segment --format wav`` on one generated hour (the earlier layout)."""
    ws = root / "ws-wav"
    shutil.rmtree(ws, ignore_errors=True)
    write_source(ws, "wav0", 0, speech)
    measured([sys.executable, "-m", "segment", "--workspace", str(ws), "--format", "wav"])
    files, size = tree_size(ws / "windows")
    shutil.rmtree(ws)
    return size / 1e6, files


ROWS = [("segment wall s", "segment_s"), ("segment CPU s", "segment_cpu"), ("segment peak RSS MiB", "segment_rss"), ("files under windows/", "files"),
        ("windows/ MB per audio hour", "mb_per_h"), ("dataset build s (first)", "build_s"), ("dataset build CPU s", "build_cpu"),
        ("dataset build peak RSS MiB", "build_rss"), ("dataset MB per audio hour", "dataset_mb_per_h"),
        ("Parquet shards", "shards"), ("unchanged rebuild s", "unchanged_s"), ("rebuild after adding 1 h s", "add_1h_s"),
        ("first load_dataset s", "load_s"), ("first load_dataset CPU s", "load_cpu"), ("first load_dataset peak RSS MiB", "load_rss"),
        ("finetune loader pass s", "loader_s"), ("finetune loader pass CPU s", "loader_cpu"), ("finetune loader peak RSS MiB", "loader_rss"),
        ("status s", "status_s"), ("status CPU s", "status_cpu")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=int, action="append", help="corpus sizes in hours (repeatable)")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "scale")
    parser.add_argument("--keep", action="store_true", help="keep the workspaces")
    args = parser.parse_args()
    sizes = sorted(args.hours or [10, 100])
    args.workdir.mkdir(parents=True, exist_ok=True)
    speech = decoded_example()
    wav_mb, wav_files = wav_baseline(args.workdir, speech)
    results = [bench_size(hours, args.workdir, speech) for hours in sizes]
    print(f"\nbaseline, segment --format wav on 1 h: {wav_mb:.1f} MB, {wav_files} files per audio hour")
    print(f"{'':34}" + "".join(f"{r['hours']:>10} h" for r in results)
          + (f"{'growth':>10}{'per h':>10}{'10,000 h':>12}" if len(results) > 1 else ""))
    for label, key in ROWS:
        line = f"{label:34}" + "".join(f"{r[key]:>12.3g}" for r in results)
        if len(results) > 1:
            small, large = results[0], results[-1]
            growth = large[key] / small[key] if small[key] else float("nan")
            slope = (large[key] - small[key]) / (large["hours"] - small["hours"])
            projected = large[key] + slope * (PROJECT_HOURS - large["hours"])
            line += f"{growth:>10.2f}{slope:>10.3g}{projected:>12.4g}"
        print(line)
    print(f"(size growth {results[-1]['hours'] / results[0]['hours']:.1f}x; linear projection from the two largest "
          "sizes' slope; loader pass read {:.1f} h of audio at the largest size)".format(results[-1]["loader_audio_h"])
          if len(results) > 1 else "")
    if not args.keep:
        for hours in sizes:
            shutil.rmtree(args.workdir / f"ws-{hours}h", ignore_errors=True)


def decoded_example() -> np.ndarray:
    """The committed espeak lecture as 16 kHz mono float32."""
    from whcore.media import ffmpeg_executable

    raw = subprocess.run([ffmpeg_executable(), "-nostdin", "-v", "error", "-i", str(EXAMPLE), "-ac", "1", "-ar",
                          str(RATE), "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.float32).astype(np.float64)


if __name__ == "__main__":
    main()
