"""Label quality on audio with known content: junk rejected, clean speech kept, CER.

Builds a workspace of 10 s windows (no overlap, so each window's truth is
known exactly): espeak-ng English sentences in several voices and speeds,
interleaved with silence, white noise, pink noise and tones. Labels it with
``--mode longform`` (the default) and ``--mode windows`` and prints, for each:
the share of non-speech windows rejected (goal >= 95 %), the share of speech
windows kept (goal >= 90 %), and the mean CER of kept speech windows, which
must not exceed the mean CER of labelling each window alone (windows mode,
unfiltered).

    .venv/bin/python bench/label_quality.py [--workspace DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from label.cli import main as label_main  # noqa: E402
from label.subtitles import cer  # noqa: E402
from label.synthetic import (SyntheticSource, build_workspace, espeak, fit, pink_noise,  # noqa: E402
                             silence, tone, white_noise)
from whcore.atomic import read_jsonl  # noqa: E402
from whcore.records import LabelRecord  # noqa: E402

WINDOW_SECONDS = 10.0
SENTENCES = [
    "The river flows quietly past the old stone bridge at the edge of town.",
    "Every morning the baker opens his shop before the sun comes up.",
    "Scientists have found a new kind of frog in the rain forest.",
    "Please remember to close the windows before you leave the house.",
    "The museum will be closed on Monday for cleaning and repairs.",
    "Children learn languages quickly when they hear them every day.",
    "A strong wind blew the leaves across the empty playground.",
    "The train to the airport leaves every twenty minutes.",
    "She planted tomatoes, beans and carrots in her small garden.",
    "Good maps helped the sailors find their way across the ocean.",
    "The library lends books, music and films to everyone for free.",
    "After the storm, the fishermen repaired their nets on the beach.",
]
VOICES = [("en", 150), ("en-us", 175), ("en+f3", 135), ("en-gb-x-rp", 200)]


def junk_windows(seed: int) -> list[tuple[str, np.ndarray]]:
    seconds = WINDOW_SECONDS
    return [
        ("silence", silence(seconds)),
        ("near-silence", white_noise(seconds, level=0.001, seed=seed)),
        ("white-noise", white_noise(seconds, level=0.05, seed=seed + 1)),
        ("loud-white-noise", white_noise(seconds, level=0.3, seed=seed + 2)),
        ("pink-noise", pink_noise(seconds, level=0.1, seed=seed + 3)),
        ("tone-440", tone(seconds, 440.0)),
        ("tone-1000", tone(seconds, 1000.0, level=0.1)),
        ("tone-120", tone(seconds, 120.0, level=0.5)),
    ]


def build(root: Path) -> tuple[Path, dict[tuple[str, int], str | None]]:
    """The workspace and the truth per (source, window index): text, or None for junk."""
    sources, truth = [], {}
    for v, (voice, speed) in enumerate(VOICES):
        pieces: list[np.ndarray] = []
        junk = junk_windows(seed=10 * v)
        sentences = SENTENCES[v * 3:] + SENTENCES[:v * 3]
        for k, sentence in enumerate(sentences):
            truth[(f"voice{v}", len(pieces))] = sentence
            pieces.append(fit(espeak(sentence, voice, speed), WINDOW_SECONDS))
            if k % 3 == 2 or k < len(junk) // 2:
                name, audio = junk[len([t for (s, _), t in truth.items() if s == f"voice{v}" and t is None])
                                   % len(junk)]
                truth[(f"voice{v}", len(pieces))] = None
                pieces.append(audio)
        sources.append(SyntheticSource(f"voice{v}", np.concatenate(pieces), title=f"{voice} at {speed} wpm"))
    junk_only = [audio for _, audio in junk_windows(seed=99)]
    sources.append(SyntheticSource("junk", np.concatenate(junk_only), title="non-speech only"))
    for i in range(len(junk_only)):
        truth[("junk", i)] = None
    build_workspace(root, sources, window=WINDOW_SECONDS, overlap=0.0)
    return root, truth


def evaluate(workspace: Path, truth: dict, mode: str) -> dict:
    records = [LabelRecord.from_dict(r) for path in sorted((workspace / "labels").glob("*.jsonl"))
               for r in read_jsonl(path)]
    junk = [r for r in records if truth[(r.source_id, r.index)] is None]
    speech = [r for r in records if truth[(r.source_id, r.index)] is not None]
    cers = {(r.source_id, r.index): cer(r.text, truth[(r.source_id, r.index)], "en") for r in speech}
    kept_cers = [cers[(r.source_id, r.index)] for r in speech if r.kept]
    leaked = [f"{r.source_id}#{r.index} {r.text!r}" for r in junk if r.kept]
    dropped = [f"{r.source_id}#{r.index} {r.flags} {r.text!r}" for r in speech if not r.kept]
    return {"mode": mode, "junk_rejected": sum(not r.kept for r in junk) / len(junk),
            "speech_kept": sum(r.kept for r in speech) / len(speech),
            "cer_kept": statistics.mean(kept_cers) if kept_cers else float("nan"),
            "cer_all": statistics.mean(cers.values()), "leaked": leaked, "dropped": dropped,
            "windows": len(records)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=None, help="where to build (default: a temp dir)")
    args = parser.parse_args()
    base = args.workspace or Path(tempfile.mkdtemp(prefix="label-quality-"))
    results = []
    for mode in ("longform", "windows"):
        root, truth = build(base / mode)
        started = time.perf_counter()
        label_main(["--workspace", str(root), "--mode", mode, "--language", "en"])
        results.append(evaluate(root, truth, mode) | {"seconds": time.perf_counter() - started})
    for r in results:
        print(f"\n[{r['mode']}] {r['windows']} windows, {r['seconds']:.1f} s: non-speech rejected "
              f"{r['junk_rejected']:.1%} (goal >= 95%), speech kept {r['speech_kept']:.1%} (goal >= 90%), "
              f"mean CER kept {r['cer_kept']:.3f}, all speech {r['cer_all']:.3f}")
        for line in r["leaked"]:
            print(f"  non-speech kept: {line}")
        for line in r["dropped"]:
            print(f"  speech rejected: {line}")
    longform, windows = results
    ok = (longform["junk_rejected"] >= 0.95 and longform["speech_kept"] >= 0.90
          and longform["cer_kept"] <= windows["cer_all"] + 1e-9)
    print(f"\nlongform kept CER {longform['cer_kept']:.3f} vs per-window labelling CER "
          f"{windows['cer_all']:.3f} (all speech windows, unfiltered): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
