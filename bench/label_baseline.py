"""The baseline process of ``bench/label.py``: faster-whisper batched on a workspace's windows.

What a user of faster-whisper alone would run to label segment's windows:
import faster-whisper, load the same CTranslate2 weights, read every window
file, and transcribe them all in one ``BatchedInferencePipeline`` call (the
windows laid end to end, one clip each through ``clip_timestamps``, so every
window is decoded alone as in ``--mode windows``), greedy, no VAD, no
timestamps, ``--batch`` windows per encoder pass, then write one JSON line of
text per window. It imports nothing from this project, so its start-up cost is
faster-whisper's own.

    python bench/label_baseline.py WORKSPACE MODEL_DIR OUT.jsonl --language en
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile
from faster_whisper import BatchedInferencePipeline, WhisperModel

SAMPLE_RATE = 16000  # Hz, what segment writes and Whisper expects


def window_rows(workspace: Path) -> list[dict]:
    """Every window record of every source, in source and window order."""
    rows = []
    for manifest in sorted((workspace / "windows").glob("*/windows.jsonl")):
        with manifest.open(encoding="utf-8") as handle:
            source_rows = [json.loads(line) for line in handle if line.strip()]
        rows += sorted(source_rows, key=lambda row: row["index"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("model_dir", type=Path, help="CTranslate2 Whisper folder")
    parser.add_argument("out", type=Path, help="JSON lines: window path and text")
    parser.add_argument("--language", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bench/gpu_check.py)")
    parser.add_argument("--compute-type", default="int8")
    args = parser.parse_args()
    model = WhisperModel(str(args.model_dir), device=args.device, compute_type=args.compute_type,
                         cpu_threads=args.threads)
    pipeline = BatchedInferencePipeline(model)
    rows = window_rows(args.workspace)
    audios = [soundfile.read(str(args.workspace / row["path"]), dtype="float32")[0] for row in rows]
    clips, offset = [], 0
    for audio in audios:
        clips.append({"start": offset / SAMPLE_RATE, "end": (offset + len(audio)) / SAMPLE_RATE})
        offset += len(audio)
    segments, _ = pipeline.transcribe(np.concatenate(audios), language=args.language, beam_size=1,
                                      batch_size=args.batch, without_timestamps=True, vad_filter=False,
                                      clip_timestamps=clips, condition_on_previous_text=False)
    with args.out.open("w", encoding="utf-8") as handle:
        for row, segment in zip(rows, segments):
            handle.write(json.dumps({"path": row["path"], "text": segment.text.strip()}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
