"""Per-window audio measures label records beside the decode: what the model's text cannot say.

Each window is read once more (one batch of windows at a time) and measured on
its own audio, so a window's figures never depend on its neighbours or on the
decoding mode: Silero VAD's speech probability and speech seconds
(``label.vad_neural``), the spectrum's tonality (``label.music``) and the
estimated speech-to-noise ratio (``label.snr``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from label.music import tonality
from label.snr import wada_snr
from label.vad_neural import VadFigures, vad_figures

BATCH_WINDOWS = 16  # windows read at a time (10 s windows: 10 MiB of float32)


@dataclass(frozen=True)
class AudioMeasures:
    """Everything measured on one window's audio."""

    vad: VadFigures
    tonality: float  # label.music.tonality
    snr_db: float | None = None  # label.snr.wada_snr; None for digital silence


def measure_audio(audio: np.ndarray) -> AudioMeasures:
    return AudioMeasures(vad=vad_figures(audio), tonality=tonality(audio), snr_db=wada_snr(audio))


def measure_windows(read: Callable[[Sequence[int]], list[np.ndarray]], count: int) -> list[AudioMeasures]:
    """The measures of windows ``0..count-1``; ``read(rows)`` returns those windows' audio."""
    measures: list[AudioMeasures] = []
    for start in range(0, count, BATCH_WINDOWS):
        measures += [measure_audio(audio) for audio in read(range(start, min(start + BATCH_WINDOWS, count)))]
    return measures
