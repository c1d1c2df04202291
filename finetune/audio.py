"""Audio loading for training and evaluation: 16 kHz mono float32.

soundfile reads the WAV/FLAC windows that segment writes without any
resampling work; anything else (a user's MP3 or Opus in a CSV) goes through
librosa, which decodes and resamples in one call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from whcore.records import SAMPLE_RATE


def load_audio(path: Path) -> np.ndarray:
    """The file's samples as 16 kHz mono float32."""
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        samples = samples.mean(axis=1)
    except (soundfile.LibsndfileError, RuntimeError):
        import librosa

        return librosa.load(str(path), sr=SAMPLE_RATE, mono=True)[0].astype(np.float32)
    if rate != SAMPLE_RATE:
        import librosa

        samples = librosa.resample(samples, orig_sr=rate, target_sr=SAMPLE_RATE)
    return samples.astype(np.float32)


def audio_seconds(path: Path) -> float:
    """Duration of an audio file in seconds, from its header when it has one."""
    try:
        return float(soundfile.info(str(path)).duration)
    except (soundfile.LibsndfileError, RuntimeError):
        import librosa

        return float(librosa.get_duration(path=str(path)))
