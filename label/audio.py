"""Window audio in and out: 16 kHz mono float32 arrays.

Windows are the 16 kHz PCM WAV files segment wrote, so soundfile reads them
directly without starting ffmpeg per window (hundreds of windows per hour).
A source's long-form audio is reassembled from its windows, so labelling
never needs the original download and sees exactly the samples segment cut.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile

from whcore.errors import SourceError
from whcore.records import SAMPLE_RATE, WindowRecord, seconds_to_samples
from whcore.workspace import Workspace


def read_window(path: Path) -> np.ndarray:
    """Samples of one window file as float32 in [-1, 1]; mono 16 kHz is required."""
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
        raise SourceError(f"window {path} cannot be read ({error}): rerun `python -m segment`") from None
    if rate != SAMPLE_RATE:
        raise SourceError(f"window {path} is {rate} Hz, not {SAMPLE_RATE}: rerun `python -m segment`")
    return samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]


def read_windows(workspace: Workspace, windows: Sequence[WindowRecord]) -> list[np.ndarray]:
    return [read_window(workspace.absolute(window.path)) for window in windows]


def reassemble(windows: Sequence[WindowRecord], samples: Sequence[np.ndarray]) -> np.ndarray:
    """The source timeline rebuilt from its windows (gaps between windows stay silent)."""
    if not windows:
        return np.zeros(0, dtype=np.float32)
    total = max(seconds_to_samples(w.start) + len(s) for w, s in zip(windows, samples))
    timeline = np.zeros(total, dtype=np.float32)
    for window, chunk in zip(windows, samples):
        offset = seconds_to_samples(window.start)
        timeline[offset:offset + len(chunk)] = chunk
    return timeline
