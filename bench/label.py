"""Labelling speed: this stage against faster-whisper's BatchedInferencePipeline.

Same weights (offline-base), int8, 2 threads, greedy, batch 8, on the same
10 s windows with 2 s overlap (the segment defaults) of a ~3.5 min espeak
lecture. Measured in one run, alternating the contenders and keeping each
one's best of ``--repeats`` (the machine is shared), printed as audio
seconds of windows per wall second and as ratios to the baseline. Goal:
``label`` (long-form mode) >= 2.2x the baseline.

The baseline gets every advantage faster-whisper offers for a list of
windows: all windows in one call, batched 8 per encoder pass via
``clip_timestamps`` (no VAD, no timestamps). Timing covers reading the window
files and decoding; model loading is excluded for all.

    .venv/bin/python bench/label.py [--repeats 3] [--copies 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faster_whisper import BatchedInferencePipeline  # noqa: E402

from label.audio import read_windows, reassemble  # noqa: E402
from label.backend_ct2 import Ct2Engine, EngineOptions  # noqa: E402
from label.decoding import decode_windows  # noqa: E402
from label.longform import decode_longform  # noqa: E402
from label.synthetic import SyntheticSource, build_workspace, decode_file  # noqa: E402
from whcore.atomic import read_jsonl  # noqa: E402
from whcore.models import ct2_model_dir  # noqa: E402
from whcore.records import SAMPLE_RATE, WindowRecord  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BATCH = 8
THREADS = 2


def baseline(engine: Ct2Engine, workspace, windows: list[WindowRecord]) -> list[str]:
    """faster-whisper BatchedInferencePipeline over all windows, 8 per batch."""
    audios = read_windows(workspace, windows)
    pipeline = BatchedInferencePipeline(engine.faster_whisper_model)
    clips, offset = [], 0
    for audio in audios:
        clips.append({"start": offset / SAMPLE_RATE, "end": (offset + len(audio)) / SAMPLE_RATE})
        offset += len(audio)
    segments, _ = pipeline.transcribe(np.concatenate(audios), language="en", beam_size=1,
                                      batch_size=BATCH, without_timestamps=True, vad_filter=False,
                                      clip_timestamps=clips, condition_on_previous_text=False)
    return [segment.text for segment in segments]


def ours_longform(engine: Ct2Engine, workspace, windows: list[WindowRecord]) -> list[str]:
    audios = read_windows(workspace, windows)
    return [d.text for d in decode_longform(engine, windows, reassemble(windows, audios), "en")]


def ours_windows(engine: Ct2Engine, workspace, windows: list[WindowRecord]) -> list[str]:
    return [d.text for d in decode_windows(engine, read_windows(workspace, windows), "en")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per contender (best kept)")
    parser.add_argument("--copies", type=int, default=3, help="the 70 s lecture repeated this many times")
    args = parser.parse_args()
    lecture = decode_file(ROOT / "examples" / "espeak_lecture.opus")
    audio = np.concatenate([lecture] * args.copies)
    workspace = build_workspace(Path(tempfile.mkdtemp(prefix="label-bench-")),
                                [SyntheticSource("lecture", audio)])
    windows = [WindowRecord.from_dict(r) for r in read_jsonl(workspace.windows_manifest_path("lecture"))]
    window_seconds = sum(w.duration for w in windows)
    engine = Ct2Engine(EngineOptions(model_dir=ct2_model_dir("offline-base"), compute_type="int8",
                                     cpu_threads=THREADS, batch_size=BATCH, beam_size=1))
    contenders = {"faster-whisper batched (baseline)": baseline, "label --mode longform": ours_longform,
                  "label --mode windows": ours_windows}
    for run in contenders.values():  # warm-up: first calls allocate
        run(engine, workspace, windows[:BATCH])
    best = {name: float("inf") for name in contenders}
    for _ in range(args.repeats):
        for name, run in contenders.items():
            started = time.perf_counter()
            run(engine, workspace, windows)
            best[name] = min(best[name], time.perf_counter() - started)
    print(f"{len(windows)} windows of 10 s (2 s overlap), {window_seconds:.0f} s of window audio, "
          f"{len(audio) / SAMPLE_RATE:.0f} s of source; whisper-base int8, {THREADS} threads, greedy, "
          f"batch {BATCH}; best of {args.repeats}")
    base = best["faster-whisper batched (baseline)"]
    for name, seconds in best.items():
        print(f"  {name:36s} {seconds:7.2f} s  {window_seconds / seconds:6.1f} audio-s/s  "
              f"{base / seconds:5.2f}x baseline")
    ratio = base / best["label --mode longform"]
    print(f"label (longform) vs faster-whisper batched: {ratio:.2f}x (goal >= 2.2x): "
          f"{'PASS' if ratio >= 2.2 else 'FAIL'}")
    return 0 if ratio >= 2.2 else 1


if __name__ == "__main__":
    sys.exit(main())
