"""How long a CPU run will take, measured on this machine before it starts.

On a 2-core laptop the embedded whisper-base labels roughly 5 to 30 seconds of
audio per second, so a channel of 50 hours takes hours; a user should know that
before the run starts, not find out from a progress bar. Runs with more than
``ESTIMATE_ABOVE_S`` of audio left on CPU first decode the start of the first
pending source (``CALIBRATION_S`` of it, the run's own mode, model and threads)
and log one line with the measured rate and the time the rest will take. The
calibration decode is thrown away: it costs about 1 % of such a run.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from label.run import Labeller, LabelOptions, read_window_records
from whcore.errors import SourceError
from whcore.journal import Journal
from whcore.records import WindowRecord, covered_seconds
from whcore.workspace import Workspace

ESTIMATE_ABOVE_S = 3600.0  # audio left to label on CPU above which the run announces its duration
CALIBRATION_S = 120.0  # audio decoded to measure the rate: one CPU batch of four 30 s inputs
SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600


def measure_rate(labeller: Labeller, windows: Sequence[WindowRecord]) -> float:
    """Audio seconds labelled per wall second on the first ``CALIBRATION_S`` of ``windows``."""
    sample = [w for w in windows if w.start < CALIBRATION_S]
    engine = labeller.engine  # loaded before the clock starts: the load is paid once per run anyway
    language = labeller.source_language(sample)
    started = time.perf_counter()
    labeller.decode_with(engine, sample, language, lambda seconds: None)
    elapsed = time.perf_counter() - started
    return covered_seconds((w.start, w.end) for w in sample) / max(elapsed, 1e-6)


def duration_text(seconds: float) -> str:
    """``2 h 05 min`` or ``7 min``."""
    minutes = round(seconds / SECONDS_PER_MINUTE)
    hours, minutes = divmod(minutes, SECONDS_PER_HOUR // SECONDS_PER_MINUTE)
    return f"{hours} h {minutes:02d} min" if hours else f"{max(minutes, 1)} min"


def estimate_line(pending_s: float, rate: float, device: str) -> str:
    return (f"{pending_s / SECONDS_PER_HOUR:.1f} h of audio to label on {device}: about "
            f"{duration_text(pending_s / rate)} at the {rate:.1f} audio-seconds per second measured just now "
            "(a CUDA GPU labels many times faster; --shard I/N splits the work over machines)")


def announce_estimate(workspace: Workspace, options: LabelOptions, labeller: Labeller, pending: Sequence[str],
                      log: Any, above_s: float = ESTIMATE_ABOVE_S) -> float | None:
    """Log how long labelling ``pending`` (the run's unlabelled sources) will take on the CPU when it
    exceeds ``above_s``; the estimate in seconds. Durations come from segment's journal."""
    if options.engine is None or options.engine.device != "cpu":
        return None
    segmented = Journal(workspace, "segment").source_entries()
    seconds = {sid: float(segmented[sid].extra.get("seconds") or 0.0) for sid in pending if sid in segmented}
    pending_s = sum(seconds.values())
    if pending_s <= above_s:
        return None
    try:
        first = read_window_records(workspace, pending[0])
    except SourceError:
        return None  # the run itself reports the unreadable manifest
    if not first:
        return None
    rate = measure_rate(labeller, first)
    log.info(estimate_line(pending_s, rate, options.engine.device))
    return pending_s / rate
