"""Run the four stages offline on the committed example and time each one.

This is what ``make demo`` calls: harvest the example recording as a local
source, cut it into windows, pseudo-label it with the embedded whisper-base
(``offline-base``) and fine-tune that model for a few steps on CPU. Each
stage is the real CLI in a subprocess, exactly as a user would run it, so a
second ``make demo`` resumes from ``logs/log.txt`` and skips finished work.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "espeak_lecture.opus"
LANGUAGE = "en"
FINETUNE_STEPS = 6  # enough to see the loss move on CPU, short enough for a demo


def stage_commands(workspace: Path) -> list[tuple[str, list[str]]]:
    """The four stage invocations, in order."""
    ws = ["--workspace", str(workspace)]
    return [
        ("harvest", ["-m", "harvest", str(EXAMPLE), *ws]),
        ("segment", ["-m", "segment", *ws]),
        ("label", ["-m", "label", *ws, "--language", LANGUAGE]),
        ("finetune", ["-m", "finetune", *ws, "--model", "offline-base", "--language", LANGUAGE,
                      "--max-steps", str(FINETUNE_STEPS)]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--workspace", default=str(REPO / "demo"), help="workspace folder to fill")
    args = parser.parse_args()
    workspace = Path(args.workspace).resolve()
    timings: list[tuple[str, float]] = []
    for name, command in stage_commands(workspace):
        print(f"\n=== {name}: python {' '.join(command)}", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, *command], cwd=REPO)
        timings.append((name, time.perf_counter() - started))
        if result.returncode != 0:
            print(f"demo stopped: {name} exited with {result.returncode}; see {workspace / 'logs' / 'log.txt'}",
                  file=sys.stderr)
            return result.returncode
    print("\n=== demo finished")
    for name, seconds in timings:
        print(f"  {name:<9} {seconds:7.1f} s")
    print(f"  dataset:  {workspace / 'dataset'}  (datasets.load_dataset('audiofolder', data_dir=...))")
    print(f"  model:    {workspace / 'model'}")
    print(f"  log:      {workspace / 'logs' / 'log.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
