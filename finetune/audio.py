"""Audio loading for training and evaluation: 16 kHz mono float32.

soundfile reads WAV/FLAC files without any resampling work; anything else (a
user's MP3 or Opus in a CSV) goes through librosa, which decodes and resamples
in one call. A row of a Parquet shard (the dataset label writes) is read from
its row group, the few most recent of which are kept decoded-free in memory
(``ROW_GROUP_CACHE`` groups of ~2.5 MB), so a shuffled pass over a corpus of any
size holds a few row groups, never a shard or the corpus.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from whcore.records import SAMPLE_RATE


ROW_GROUP_CACHE = 8  # row groups of Parquet audio bytes kept (16 windows, ~2.5 MB each)
OPEN_SHARDS = 16  # Parquet shards kept open (each holds its parsed footer: ~1.2 MB measured for a 500 MB shard)


@functools.lru_cache(maxsize=ROW_GROUP_CACHE)
def _row_group_audio(path: Path, group: int) -> list[bytes]:
    """The embedded audio bytes of one row group of a Parquet shard."""
    column = _open_shard(path).read_row_group(group, columns=["audio"]).column("audio")
    return [item["bytes"] for item in column.to_pylist()]


@functools.lru_cache(maxsize=OPEN_SHARDS)
def _open_shard(path: Path) -> Any:
    """A shard opened once, its footer parsed once: opening a 500 MB shard (200 row groups)
    costs 1.2 ms, which a shuffled pass paid for nearly every pack. Shard files are named
    by their content, so an open one never goes stale; reads are positional (pread), so
    forked workers may share it."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(str(path), pre_buffer=False)  # pre-buffering kept ~4 MB per open shard


def load_audio(path: Path, row: tuple[int, int] | None = None) -> np.ndarray:
    """The file's samples as 16 kHz mono float32; with ``row`` (row group, position), that
    row's embedded audio in the Parquet shard ``path``."""
    if row is not None:
        data = _row_group_audio(path, row[0])[row[1]]
        return _decoded(io.BytesIO(data), str(path))
    return _decoded(str(path), str(path))


def _decoded(source: str | io.BytesIO, path: str) -> np.ndarray:
    try:
        samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
        samples = samples.mean(axis=1)
    except (soundfile.LibsndfileError, RuntimeError):
        import librosa

        return librosa.load(path, sr=SAMPLE_RATE, mono=True)[0].astype(np.float32)
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
