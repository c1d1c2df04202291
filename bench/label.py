"""Labelling speed as a user waits for it: ``python -m label`` against faster-whisper batched.

Both contenders are whole processes timed from start to exit, so start-up,
imports and model loading count, as they do for a user:

* ``python -m label --workspace WS --language L`` with its defaults (long-form
  mode, every filter on, batch 4 on CPU, ``--encoder auto``): start-up, model
  load, labelling, dataset build and report;
* the same with ``--encoder ctranslate2`` (unless ``--skip-encoder``), so the
  share of the speed-up that the PyTorch bfloat16 encoder brings on CPUs with
  AMX is measured in the same run;
* ``bench/label_baseline.py``: faster-whisper's ``BatchedInferencePipeline``
  on the same windows (its import and model load included), the same
  whisper-base int8 weights, 2 threads, greedy, batch 8.

Sources are long espeak-ng lectures (several voices and speeds), one English
and one Spanish by default, each run through the real ``python -m harvest``
(local file) and ``python -m segment`` (10 s windows, 2 s overlap) once and
cached; every timed run gets a fresh copy of that workspace. The int8 copy of
the weights that label keeps in the model cache is made before the first run
(once per machine, like assembling the model). The machine may
be shared, so the contenders alternate (baseline, label, baseline, label ...)
within one bench run, and each run records the 1-minute load average before it
starts. Printed per source: median and range of wall seconds, audio seconds
per wall second, peak RSS, the ratio of medians and of each pair, and how far
label's kept text agrees with the baseline's. Goal: ratio of medians >= 2.5x on
every source.

A second round checks ``--backend auto``: ``label --mode windows`` with the
transformers backend (fp32, sdpa) against the CTranslate2 backend, whole
processes, alternating; auto must pick the faster one (exit status 1 if not,
as when the speed goal fails).

    .venv/bin/python bench/label.py                 # 2 sources of ~7.7 min, 3 runs each
    .venv/bin/python bench/label.py --quick         # smoke check: 1 min sources, 1 run
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from whcore.atomic import read_jsonl  # noqa: E402
from whcore.media import ffmpeg_executable  # noqa: E402
from whcore.models import ct2_model_dir  # noqa: E402
from whcore.records import SAMPLE_RATE  # noqa: E402
from whcore.text import character_error_rate  # noqa: E402

SPEECH_DIR = ROOT / "bench" / "speech"  # <language>.txt: one sentence per line
BASELINE_SCRIPT = ROOT / "bench" / "label_baseline.py"
GOAL_RATIO = 2.5  # label's median wall time must be at most 1/2.5 of the baseline's
THREADS = 2
BATCH = 8
SENTENCES_PER_PARAGRAPH = 4
PARAGRAPH_PAUSE_SECONDS = 0.7
SOURCE_BITRATE = "32k"  # Opus, mono: the kind of audio-only stream harvest downloads
FULL_SECONDS = 460.0  # each source is at least this long (>= 7 min)
QUICK_SECONDS = 60.0
BASELINE = "faster-whisper batched"
LABEL = "python -m label"
LABEL_CT2_ENCODER = "label --encoder ctranslate2"
CT2_WINDOWS = "label --mode windows (ct2)"
HF_WINDOWS = "label --mode windows (transformers)"


@dataclass(frozen=True)
class SourceSpec:
    language: str  # Whisper language code, and the name of the sentence file
    voices: tuple[tuple[str, int], ...]  # espeak-ng voice and words per minute, cycled per paragraph


SOURCES = (
    SourceSpec("en", (("en-us", 165), ("en-gb", 150), ("en+f3", 175), ("en-gb-x-rp", 190), ("en-us+m3", 140))),
    SourceSpec("es", (("es", 160), ("es-419", 150), ("es+f3", 170), ("es-419+m3", 185), ("es+f2", 140))),
)


@dataclass(frozen=True)
class Timing:
    contender: str
    seconds: float  # wall time of the whole process
    peak_rss_mib: float  # the process's own peak resident memory (children waited for included)
    cpu_seconds: float  # user + system CPU time of the process (less sensitive to other load than wall time)
    load: float  # 1-minute load average just before it started


def espeak(text: str, voice: str, words_per_minute: int) -> np.ndarray:
    """``text`` spoken by espeak-ng, as 16 kHz mono float32 (ffmpeg resamples its 22.05 kHz)."""
    speech = subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "--stdout", text],
                            capture_output=True, check=True).stdout
    pcm = subprocess.run([ffmpeg_executable(), "-nostdin", "-v", "error", "-i", "-", "-ac", "1",
                          "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"], input=speech, capture_output=True,
                         check=True).stdout
    return np.frombuffer(pcm, dtype=np.float32)


def synthesise(spec: SourceSpec, seconds: float) -> np.ndarray:
    """At least ``seconds`` of espeak-ng speech: paragraphs of the language's sentences, the
    voices and speeds cycling, with short pauses, 16 kHz float32."""
    sentences = [s.strip() for s in (SPEECH_DIR / f"{spec.language}.txt").read_text("utf-8").splitlines()
                 if s.strip()]
    pause = np.zeros(int(PARAGRAPH_PAUSE_SECONDS * SAMPLE_RATE), dtype=np.float32)
    parts: list[np.ndarray] = []
    total, paragraph = 0, 0
    while total < seconds * SAMPLE_RATE:
        first = paragraph * SENTENCES_PER_PARAGRAPH % len(sentences)
        text = " ".join((sentences * 2)[first:first + SENTENCES_PER_PARAGRAPH])
        voice, rate = spec.voices[paragraph % len(spec.voices)]
        speech = espeak(text, voice, rate)
        parts += [speech, pause]
        total += len(speech) + len(pause)
        paragraph += 1
    return np.concatenate(parts)


def encode_opus(audio: np.ndarray, path: Path) -> None:
    subprocess.run([ffmpeg_executable(), "-nostdin", "-y", "-v", "error", "-f", "f32le", "-ar", str(SAMPLE_RATE),
                    "-ac", "1", "-i", "-", "-c:a", "libopus", "-b:a", SOURCE_BITRATE, str(path)],
                   input=audio.astype(np.float32).tobytes(), check=True)


def stage(args: list[str], log: Path) -> None:
    """Run a stage CLI to completion; its output goes to ``log``; failure stops the bench."""
    with log.open("ab") as handle:
        code = subprocess.run([sys.executable, *args], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode
    if code != 0:
        sys.exit(f"bench: `{' '.join(args)}` exited {code}; see {log}")


def prepared_workspace(spec: SourceSpec, seconds: float, cache: Path) -> Path:
    """A workspace where the real harvest and segment have processed one synthetic source
    (built once per language and length, then reused)."""
    workspace = cache / f"{spec.language}-{int(seconds)}s"
    if (workspace / ".ready").is_file():
        return workspace
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    media = cache / f"lecture_{spec.language}_{int(seconds)}s.opus"
    encode_opus(synthesise(spec, seconds), media)
    log = cache / f"{workspace.name}.log"
    stage(["-m", "harvest", str(media), "--workspace", str(workspace), "--sleep", "0"], log)
    stage(["-m", "segment", "--workspace", str(workspace)], log)
    (workspace / ".ready").write_text("ok\n")
    return workspace


def window_facts(workspace: Path) -> tuple[int, float, float]:
    """Window count, window seconds (with overlap) and source seconds of a workspace."""
    rows = [row for manifest in (workspace / "windows").glob("*/windows.jsonl") for row in read_jsonl(manifest)]
    return len(rows), sum(r["end"] - r["start"] for r in rows), max((r["end"] for r in rows), default=0.0)


def timed(command: list[str], contender: str, log: Path) -> Timing:
    """Wall time and peak RSS of one whole process (``wait4`` gives this child's own rusage)."""
    load = os.getloadavg()[0]
    with log.open("ab") as handle:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"bench: {contender} exited {process.returncode}; see {log}")
    return Timing(contender, seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, load)


def fresh_copy(workspace: Path, runs_dir: Path, name: str) -> Path:
    target = runs_dir / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(workspace, target, symlinks=True)
    return target


def label_command(workspace: Path, language: str, *extra: str) -> list[str]:
    """label with its own defaults (batch size, encoder) but the baseline's thread count."""
    return [sys.executable, "-m", "label", "--workspace", str(workspace), "--language", language,
            "--threads", str(THREADS), *extra]


def baseline_command(workspace: Path, language: str, out: Path) -> list[str]:
    return [sys.executable, str(BASELINE_SCRIPT), str(workspace), str(ct2_model_dir("offline-base")), str(out),
            "--language", language, "--threads", str(THREADS), "--batch", str(BATCH)]


def agreement(label_ws: Path, baseline_out: Path, language: str) -> tuple[int, int, float]:
    """Kept windows, all windows, and the median CER of label's kept text against the baseline's
    text for the same windows (a check that the faster path still hears the same words; the
    median, because a window the baseline stopped decoding early scores a CER of several)."""
    baseline = {row["path"]: row["text"] for row in read_jsonl(baseline_out)}
    rows = [row for path in sorted((label_ws / "labels").glob("*.jsonl")) for row in read_jsonl(path)]
    kept = [row for row in rows if not row["flags"]]
    cers = [character_error_rate(baseline[row["path"]], row["text"], language)
            for row in kept if row["path"] in baseline]
    return len(kept), len(rows), float(np.median(cers)) if cers else float("nan")


def speed_round(spec: SourceSpec, workspace: Path, runs: int, runs_dir: Path,
                compare_encoder: bool) -> tuple[float, list[Timing]]:
    """Alternate baseline and label ``runs`` times on fresh copies; print; return the ratio of medians.

    With ``compare_encoder`` label also runs with ``--encoder ctranslate2`` in each round, so the
    encoder's share of the speed-up is measured in the same run."""
    count, window_seconds, source_seconds = window_facts(workspace)
    timings: list[Timing] = []
    extra: list[Timing] = []
    last_label = last_baseline = None
    for run in range(runs):
        ws = fresh_copy(workspace, runs_dir, f"{spec.language}-baseline")
        last_baseline = runs_dir / f"{spec.language}-baseline.jsonl"
        timings.append(timed(baseline_command(ws, spec.language, last_baseline), BASELINE,
                             runs_dir / f"{spec.language}-baseline.log"))
        last_label = fresh_copy(workspace, runs_dir, f"{spec.language}-label")
        timings.append(timed(label_command(last_label, spec.language), LABEL,
                             runs_dir / f"{spec.language}-label.log"))
        pair = timings[-2:]
        print(f"  run {run + 1}: baseline {pair[0].seconds:6.2f} s (load {pair[0].load:.2f}), "
              f"label {pair[1].seconds:6.2f} s (load {pair[1].load:.2f}): "
              f"{pair[0].seconds / pair[1].seconds:.2f}x", flush=True)
        if compare_encoder:
            ws = fresh_copy(workspace, runs_dir, f"{spec.language}-label-ct2enc")
            extra.append(timed(label_command(ws, spec.language, "--encoder", "ctranslate2"), LABEL_CT2_ENCODER,
                               runs_dir / f"{spec.language}-label-ct2enc.log"))
    print(f"source {spec.language}: {source_seconds:.0f} s of speech, {count} windows "
          f"({window_seconds:.0f} s of window audio); whisper-base, {THREADS} threads, greedy; baseline int8 "
          f"batch {BATCH}, label its defaults (encoder {default_encoder()}); {runs} runs, whole processes")
    medians = report(timings + extra, [BASELINE, LABEL] + ([LABEL_CT2_ENCODER] if extra else []), source_seconds)
    if extra:
        print(f"  encoder lever: label with its default encoder is {medians[LABEL_CT2_ENCODER] / medians[LABEL]:.2f}x "
              f"label --encoder ctranslate2 (CPU time "
              f"{statistics.median(t.cpu_seconds for t in extra) / statistics.median(t.cpu_seconds for t in timings[1::2]):.2f}x)")
    ratios = [b.seconds / o.seconds for b, o in zip(timings[::2], timings[1::2])]
    ratio = medians[BASELINE] / medians[LABEL]
    cpu_ratio = (statistics.median(t.cpu_seconds for t in timings[::2])
                 / statistics.median(t.cpu_seconds for t in timings[1::2]))
    kept, total, mean_cer = agreement(last_label, last_baseline, spec.language)
    print(f"  label kept {kept}/{total} windows; median CER of kept text vs the baseline's text: {mean_cer:.3f}")
    print(f"  {spec.language}: label vs faster-whisper batched: {ratio:.2f}x (median of {runs}; "
          f"pairs {min(ratios):.2f}-{max(ratios):.2f}x; CPU time {cpu_ratio:.2f}x) goal >= {GOAL_RATIO}x: "
          f"{'PASS' if ratio >= GOAL_RATIO else 'FAIL'}", flush=True)
    return ratio, timings


def report(timings: list[Timing], contenders: list[str], audio_seconds: float) -> dict[str, float]:
    """Print median, range, throughput, peak RSS and load per contender; return the medians."""
    medians = {}
    for name in contenders:
        mine = [t for t in timings if t.contender == name]
        seconds = [t.seconds for t in mine]
        medians[name] = statistics.median(seconds)
        print(f"  {name:38s} median {medians[name]:6.2f} s (range {min(seconds):.2f}-{max(seconds):.2f}), "
              f"{audio_seconds / medians[name]:5.1f} audio-s/s, CPU {statistics.median(t.cpu_seconds for t in mine):6.1f} s, "
              f"peak RSS {max(t.peak_rss_mib for t in mine):5.0f} MiB, "
              f"load {min(t.load for t in mine):.2f}-{max(t.load for t in mine):.2f}")
    return medians


def default_encoder() -> str:
    """What ``label --encoder auto`` resolves to on this machine's CPU."""
    from label.encoder_torch import resolve_encoder

    return resolve_encoder("auto", "cpu")


def auto_backend() -> str:
    """What ``label --backend auto`` resolves to on this machine, asked from label/cli.py itself."""
    from label.cli import build_parser, options_from

    return options_from(build_parser().parse_args(["--backend", "auto", "--mode", "windows",
                                                   "--language", "en"])).backend


def backend_round(spec: SourceSpec, workspace: Path, runs: int, runs_dir: Path) -> bool:
    """Whole-process ``--mode windows`` with each backend, alternating; True if auto picks the faster."""
    _, _, source_seconds = window_facts(workspace)
    timings: list[Timing] = []
    for _ in range(runs):
        for name, backend in ((CT2_WINDOWS, "ct2"), (HF_WINDOWS, "transformers")):
            ws = fresh_copy(workspace, runs_dir, f"{spec.language}-{backend}")
            timings.append(timed(label_command(ws, spec.language, "--mode", "windows", "--backend", backend),
                                 name, runs_dir / f"{spec.language}-{backend}.log"))
    print(f"backends on source {spec.language} (--mode windows, whole processes, {runs} runs):")
    medians = report(timings, [CT2_WINDOWS, HF_WINDOWS], source_seconds)
    faster = "ct2" if medians[CT2_WINDOWS] <= medians[HF_WINDOWS] else "transformers"
    chosen = auto_backend()
    print(f"verdict: CTranslate2 int8 is {medians[HF_WINDOWS] / medians[CT2_WINDOWS]:.2f}x transformers fp32 "
          f"here, so --backend auto should pick {faster}; label/cli.py picks {chosen}: "
          f"{'AGREES' if chosen == faster else 'DISAGREES'}", flush=True)
    return chosen == faster


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke check: 1 min sources, 1 run, 1 backend run")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per contender (default 3, quick 1)")
    parser.add_argument("--languages", default=",".join(s.language for s in SOURCES),
                        help="comma-separated source languages to run: " + ", ".join(s.language for s in SOURCES))
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "whisper-harvest-label-bench",
                        help="where the prepared workspaces are kept between bench runs")
    parser.add_argument("--skip-backends", action="store_true", help="leave out the --backend auto check")
    parser.add_argument("--skip-encoder", action="store_true",
                        help="leave out the third contender, label --encoder ctranslate2")
    args = parser.parse_args()
    seconds = QUICK_SECONDS if args.quick else FULL_SECONDS
    runs = args.runs or (1 if args.quick else 3)
    specs = [s for s in SOURCES if s.language in args.languages.split(",")]
    args.cache.mkdir(parents=True, exist_ok=True)
    runs_dir = args.cache / "runs"
    runs_dir.mkdir(exist_ok=True)
    for log in runs_dir.glob("*.log"):
        log.unlink()
    workspaces = {spec.language: prepared_workspace(spec, seconds, args.cache) for spec in specs}
    # One-time per machine and model, like assembling offline-base: not part of a run.
    from label.backend_ct2 import int8_model_dir

    int8_model_dir(ct2_model_dir("offline-base"))
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at start; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    passed = True
    for spec in specs:
        ratio, _ = speed_round(spec, workspaces[spec.language], runs, runs_dir, not args.skip_encoder)
        passed &= ratio >= GOAL_RATIO
    if not args.skip_backends:
        passed &= backend_round(specs[0], workspaces[specs[0].language], runs, runs_dir)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
