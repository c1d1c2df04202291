"""Audio loading for training and evaluation: 16 kHz mono float32.

soundfile reads WAV/FLAC files without any resampling work; anything else (a
user's MP3 or Opus in a CSV) goes through librosa, which decodes and resamples
in one call. A row of a Parquet shard (the dataset label writes) is read from
its row group, its text too (finetune does not hold the corpus' texts), the few
most recent of which are kept decoded-free in memory
(``ROW_GROUP_CACHE`` groups of ~3 MB), so a pass over a corpus of any size holds
a few row groups, never a shard or the corpus.

What a pass leaves behind matters as much as what it holds: Arrow's default
allocator (mimalloc) kept the freed pages of every row group read, and the loader's
peak RSS grew 16 % from a 10 h to a 100 h corpus with nothing more held.
``use_returning_pool`` reads the shards with Arrow's jemalloc pool, which gives
freed pages back after its decay time (+4–7 %), and each newly opened shard
first hands back what the last one left (``_OpenShards``).
"""

from __future__ import annotations

import ctypes
import functools
import io
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from finetune.order import SHARDS_TOGETHER
from whcore.records import SAMPLE_RATE


TEXT_GROUP_CACHE = 64  # row groups of transcriptions kept (16 short texts each)
ROW_GROUP_CACHE = 2  # row groups of Parquet audio bytes kept (16 windows, ~3 MB each): a pack's windows lie in
# one or two; over the first 4,000 packs of 100 h, 8 kept read 1.23 row groups a pack, 2 kept 1.25, and held
# 18 MB less (peak RSS 167 vs 147 MiB)
OPEN_SHARDS = SHARDS_TOGETHER  # Parquet shards kept open, each with its parsed footer (2.4 MB for a 500 MB shard
# of 174 row groups): as many as the trainer's order reads at a time; 16 open ones made memory grow with the corpus


@functools.lru_cache(maxsize=ROW_GROUP_CACHE)
def _row_group_audio(path: Path, group: int) -> list[bytes]:
    """The embedded audio bytes of one row group of a Parquet shard (copied out as ``bytes``:
    decoding straight from the Arrow buffers held them longer and raised the peak by ~10 MB)."""
    column = _open_shard(path).read_row_group(group, columns=["audio"]).column("audio")
    return [item["bytes"] for item in column.to_pylist()]


@functools.lru_cache(maxsize=TEXT_GROUP_CACHE)
def _row_group_texts(path: Path, group: int) -> list[str]:
    """The transcriptions of one row group (a few kB: only that column is read), stripped as
    ``finetune.data`` reads them."""
    column = _open_shard(path).read_row_group(group, columns=["transcription"]).column("transcription")
    return [str(text or "").strip() for text in column.to_pylist()]


def shard_text(path: Path, group: int, position: int) -> str:
    """The transcription of row ``position`` of row group ``group`` of the shard ``path``."""
    return _row_group_texts(path, group)[position]


def use_returning_pool() -> None:
    """Make Arrow allocate from its jemalloc pool, unless the user chose a pool
    (``ARROW_DEFAULT_MEMORY_POOL``) or this pyarrow has none (macOS and Windows wheels).
    Measured over 3,000 packs of the same loader (peak RSS, MiB, 10 h -> 100 h corpus):
    mimalloc 122 -> 141, jemalloc 116 -> 124, at the same speed."""
    import pyarrow as pa

    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, pa.ArrowNotImplementedError):
        pass


class _OpenShards:
    """The last ``keep`` shards opened, each with its footer parsed once: opening a 500 MB
    shard (174 row groups) costs 5–40 ms on the build machine, which a plainly shuffled pass
    paid for nearly every pack. Shard files are named by their content, so an open one never
    goes stale; reads are positional (pread), so forked workers may share one. Before a new
    shard is opened, the evicted one's footer and the pages Arrow's pool and malloc keep free
    are handed back: a 100 h pass opens shards ~17 times, and each switch used to leave the
    heap a little larger."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.files: OrderedDict[Path, Any] = OrderedDict()

    def get(self, path: Path) -> Any:
        shard = self.files.get(path)
        if shard is not None:
            self.files.move_to_end(path)
            return shard
        while len(self.files) >= self.keep:
            self.files.popitem(last=False)
        _hand_back_free_memory()
        import pyarrow.parquet as pq

        shard = self.files[path] = pq.ParquetFile(str(path), pre_buffer=False)  # pre-buffering kept ~4 MB a shard
        return shard


_OPEN_SHARDS = _OpenShards(OPEN_SHARDS)


def _open_shard(path: Path) -> Any:
    """The shard at ``path``, opened (see ``_OpenShards``)."""
    return _OPEN_SHARDS.get(path)


def _hand_back_free_memory() -> None:
    """Return the free pages Arrow's pool and glibc's malloc hold to the system (a few ms)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> Any:
    """glibc, for ``malloc_trim``; None elsewhere (musl, macOS, Windows). Loaded by its soname
    on first use: ``ctypes.util.find_library`` would run ``ldconfig`` at import."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def load_audio(path: Path, row: tuple[int, int] | None = None) -> np.ndarray:
    """The file's samples as 16 kHz mono float32; with ``row`` (row group, position), that
    row's embedded audio in the Parquet shard ``path``."""
    if row is not None:
        data = _row_group_audio(path, row[0])[row[1]]
        return _decoded(io.BytesIO(data), str(path))
    return _decoded(str(path), str(path))


def _decoded(source: str | io.BytesIO, path: str) -> np.ndarray:
    try:
        samples, rate = soundfile.read(source, dtype="float32")
    except (soundfile.LibsndfileError, RuntimeError):
        import librosa

        return librosa.load(path, sr=SAMPLE_RATE, mono=True)[0].astype(np.float32)
    if samples.ndim > 1:  # our windows are mono: one buffer, no channel average or copy
        samples = samples.mean(axis=1, dtype=np.float32)
    if rate != SAMPLE_RATE:
        import librosa

        samples = librosa.resample(samples, orig_sr=rate, target_sr=SAMPLE_RATE)
    return np.asarray(samples, dtype=np.float32)


def audio_seconds(path: Path) -> float:
    """Duration of an audio file in seconds, from its header when it has one."""
    try:
        return float(soundfile.info(str(path)).duration)
    except (soundfile.LibsndfileError, RuntimeError):
        import librosa

        return float(librosa.get_duration(path=str(path)))
