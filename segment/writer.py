"""Store a source's windows: the whole source once as FLAC, or one WAV file per window.

``FlacStore`` (the default) encodes the decoded stream as it arrives into one
lossless 16 kHz mono FLAC per source; a window is then only its start sample in
that file (``whcore.window_audio`` cuts it when read). ``WindowWriter`` (``--format
wav``) writes each window as its own WAV with a fixed 44-byte header: a
hand-written header plus one ``write`` of the samples is the cheapest way to put
hundreds of small files on disk. Both write into a staging folder that is renamed
into place only when the whole source is done, so a killed run never leaves a
window that counts.
"""

from __future__ import annotations

import errno
import os
import resource
import struct
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile

from whcore.records import SAMPLE_RATE
from whcore.window_audio import SOURCE_AUDIO_NAME

WAV_HEADER_BYTES = 44
BITS_PER_SAMPLE = 16
CHANNELS = 1
SYNC_BATCH_FILES = 16  # windows fsynced per background job: fewer thread wake-ups
FLAC_WRITE_MARGIN_BYTES = 1 << 20  # 1 MiB: more than libsndfile buffers before one write


def wav_header(sample_count: int, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Canonical RIFF/WAVE PCM header for mono s16 audio of ``sample_count`` samples."""
    block_align = CHANNELS * BITS_PER_SAMPLE // 8
    data_bytes = sample_count * block_align
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1,
                       CHANNELS, sample_rate, sample_rate * block_align, block_align,
                       BITS_PER_SAMPLE, b"data", data_bytes)


def window_file_name(source_id: str, start: int, end: int, sample_rate: int = SAMPLE_RATE) -> str:
    """``<source_id>_<start_ms>_<end_ms>.wav`` (milliseconds rounded to the nearest)."""
    return f"{source_id}_{round(start * 1000 / sample_rate)}_{round(end * 1000 / sample_rate)}.wav"


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write int16 ``samples`` as a WAV file (not fsynced: see ``WindowWriter``)."""
    with open(path, "wb") as handle:
        handle.write(wav_header(len(samples), sample_rate))
        handle.write(np.ascontiguousarray(samples, dtype="<i2").data)


def fsync_path(path: Path) -> None:
    """fsync a file or folder by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_paths(paths: list[Path]) -> None:
    for path in paths:
        fsync_path(path)


class WindowWriter:
    """Write windows into one folder; fsync them on a background thread.

    An fsync costs about as much as decoding a window, so doing it inline
    would serialise disk and decoder; the thread overlaps them and
    ``finish`` waits until every file is durable, before the journal may
    call the source done.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths: list[Path] = []
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsync")
        self._pending: list[Future] = []
        self._unsynced: list[Path] = []

    def add_samples(self, chunk: np.ndarray) -> None:
        """The decoded stream passes by; window files hold their own copy (see ``place``)."""

    def place(self, name: str, start: int, samples: np.ndarray) -> tuple[str, int]:
        """Write one window as ``name``; returns the file holding it and its offset there (0)."""
        self.write(name, samples)
        return name, 0

    def write(self, name: str, samples: np.ndarray) -> Path:
        path = self.folder / name
        write_wav(path, samples)
        self.paths.append(path)
        self._unsynced.append(path)
        if len(self._unsynced) >= SYNC_BATCH_FILES:
            self._pending.append(self._syncer.submit(fsync_paths, self._unsynced))
            self._unsynced = []
        return path

    def finish(self, *others: Path) -> None:
        """Wait until every window, ``others`` and the folder itself are on disk."""
        for future in self._pending:
            future.result()
        self._pending.clear()
        fsync_paths([*self._unsynced, *others, self.folder])
        self._unsynced = []

    def __enter__(self) -> "WindowWriter":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._syncer.shutdown(wait=True, cancel_futures=True)


class FlacStore:
    """The decoded source, chunk by chunk, as one FLAC file: memory stays at one chunk.

    The file holds every decoded sample, so window ``k`` is samples
    ``start:end`` of it whatever the snapping or tail rules decided.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths = [folder / SOURCE_AUDIO_NAME]
        self._file = soundfile.SoundFile(str(self.paths[0]), "w", samplerate=SAMPLE_RATE, channels=CHANNELS,
                                         format="FLAC", subtype="PCM_16")

    def add_samples(self, chunk: np.ndarray) -> None:
        try:
            self._file.write(np.ascontiguousarray(chunk, dtype="<i2"))
        except (RuntimeError, soundfile.LibsndfileError) as error:
            raise storage_error(self.paths[0], error) from None

    def place(self, name: str, start: int, samples: np.ndarray) -> tuple[str, int]:
        """Windows are not written: the source file holds them; returns it and the window's start."""
        return SOURCE_AUDIO_NAME, start

    def finish(self, *others: Path) -> None:
        """Close the FLAC (its header gets the sample count) and make it and ``others`` durable."""
        try:
            self._file.close()
        except (RuntimeError, soundfile.LibsndfileError) as error:
            raise storage_error(self.paths[0], error) from None
        fsync_paths([*self.paths, *others, self.folder])

    def __enter__(self) -> "FlacStore":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            self._file.close()
        except (RuntimeError, soundfile.LibsndfileError):
            pass  # already failing: the error that got us here is the one to report


def storage_error(path: Path, error: BaseException) -> OSError:
    """The OSError behind a libsndfile write failure, which reports only "System error.".

    A full disk and a file-size limit are told apart by looking at them, so the run
    says "disk full" in one line as for any other write.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    size = path.stat().st_size if path.exists() else 0
    if soft != resource.RLIM_INFINITY and size + FLAC_WRITE_MARGIN_BYTES >= soft:
        return OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(path))
    stats = os.statvfs(path.parent)
    if stats.f_bavail * stats.f_frsize < FLAC_WRITE_MARGIN_BYTES:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return OSError(errno.EIO, f"libsndfile could not write ({error})", str(path))
