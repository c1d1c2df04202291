"""Read a window's samples, wherever segment stored them: the one reader every stage uses.

segment stores each source once, as a 16 kHz mono 16-bit FLAC (lossless, about half
the bytes of PCM on speech, one file per source instead of one per 10 s window),
and each window record names that file and the sample where the window begins
(``offset``). With ``segment --format wav`` a window is its own WAV file
(``offset`` 0), as in earlier versions, whose records have no ``offset`` at all.
Either way a window is ``samples_in(record)`` samples from ``offset``, so label,
the dataset export and finetune all cut exactly what segment cut, and none of
them needs to know which layout the workspace has.

libsndfile seeks FLAC to the exact sample (tested against the WAV writer's
windows), and ``WindowReader`` keeps the last file open, so reading the windows
of a source in order opens it once.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator, Protocol, Sequence

import numpy as np
import soundfile

from whcore.errors import SourceError
from whcore.records import FLAC_FORMAT, SAMPLE_RATE, STORE_FORMATS, WAV_FORMAT, seconds_to_samples  # noqa: F401
from whcore.workspace import Workspace

SOURCE_AUDIO_NAME = "audio.flac"  # a source's stored audio inside windows/<id>/


class WindowLike(Protocol):
    """What locates a window's audio: ``WindowRecord`` and ``LabelRecord`` both have it."""

    source_id: str
    start: float  # seconds in the source
    end: float
    path: str  # workspace-relative file holding the samples
    offset: int  # sample of ``path`` where the window begins


def samples_in(window: WindowLike) -> int:
    """The window's length in samples (its sample-exact bounds, from its start and end)."""
    return seconds_to_samples(window.end) - seconds_to_samples(window.start)


def inside_workspace(workspace: Workspace, relative: str, what: str = "window") -> Path:
    """The workspace file a record names; SourceError if the path would leave the workspace.

    Records are data, not trusted code: an absolute path or a ``..`` step in one
    could make a stage read (and publish) any file on the machine.
    """
    parts = PurePosixPath(relative).parts
    if not relative or PurePosixPath(relative).is_absolute() or ".." in parts or "\\" in relative:
        raise SourceError(f"{what} path {relative!r} points outside the workspace {workspace.root}; "
                          "the record was edited or corrupted: rerun the stage that wrote it")
    return workspace.root / os.path.normpath(relative)


class WindowReader:
    """Reads windows (or parts of them) as int16 or float32; keeps the last file open.

    Use as a context manager; reading the windows of one source in order costs
    one open and one header parse.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._path: Path | None = None
        self._handle: soundfile.SoundFile | None = None

    def _open(self, path: Path) -> soundfile.SoundFile:
        if self._handle is not None and self._path == path:
            return self._handle
        self.close()
        try:
            handle = soundfile.SoundFile(str(path))
        except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
            raise SourceError(f"audio {path} cannot be read ({error}): rerun `python -m segment`") from None
        if handle.samplerate != SAMPLE_RATE:
            handle.close()
            raise SourceError(f"audio {path} is {handle.samplerate} Hz, not {SAMPLE_RATE}: rerun `python -m segment`")
        self._path, self._handle = path, handle
        return handle

    def read(self, window: WindowLike, start: int = 0, stop: int | None = None,
             dtype: str = "float32") -> np.ndarray:
        """Samples ``start:stop`` of ``window`` (relative to its first sample), mono.

        float32 is in [-1, 1] (what Whisper takes); int16 is the stored samples.
        A file shorter than the record says gives a SourceError naming it: a
        truncated store must not pass as a short window.
        """
        length = samples_in(window)
        stop = length if stop is None else min(stop, length)
        start = min(max(start, 0), stop)
        path = inside_workspace(self.workspace, window.path)
        handle = self._open(path)
        first = int(getattr(window, "offset", 0) or 0) + start
        try:
            handle.seek(first)
            samples = handle.read(stop - start, dtype=dtype, always_2d=True)
        except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
            self.close()
            raise SourceError(f"audio {path} cannot be read at sample {first} ({error}): the file is "
                              "damaged; rerun `python -m segment`") from None
        if len(samples) != stop - start:
            raise SourceError(f"audio {path} ends before the window {window.source_id} "
                              f"{window.start:.3f}-{window.end:.3f} s it should hold: the file is truncated; "
                              "rerun `python -m segment`")
        if samples.shape[1] == 1:
            return samples[:, 0]
        mixed = samples.mean(axis=1)
        return mixed.astype(dtype) if dtype != "float32" else mixed.astype(np.float32)

    def read_many(self, windows: Sequence[WindowLike], dtype: str = "float32") -> list[np.ndarray]:
        """The audio of ``windows``, reading each run of windows stored in one file with one seek.

        Overlapping windows of a source (2 s of every 10 s) are read once as one span
        and sliced, instead of one seek and one decode per window.
        """
        out: list[np.ndarray] = []
        for group in _runs_in_one_file(windows):
            first, last = group[0], group[-1]
            base = int(first.offset)
            span = _Span(first.source_id, first.start, first.start + (last.offset + samples_in(last) - base) / SAMPLE_RATE,
                         first.path, base)
            samples = self.read(span, dtype=dtype)
            out += [samples[w.offset - base:w.offset - base + samples_in(w)] for w in group]
        return out

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._path, self._handle = None, None

    def __enter__(self) -> "WindowReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Span:
    """A stretch of one stored file, read like a window."""

    source_id: str
    start: float
    end: float
    path: str
    offset: int


def _runs_in_one_file(windows: Sequence[WindowLike]) -> list[list[WindowLike]]:
    """``windows`` in order, grouped into runs that lie in one file in ascending order (offset > 0 stores)."""
    runs: list[list[WindowLike]] = []
    for window in windows:
        previous = runs[-1][-1] if runs else None
        if previous is not None and window.path == previous.path and window.offset >= previous.offset \
                and Path(window.path).name == SOURCE_AUDIO_NAME:
            runs[-1].append(window)
        else:
            runs.append([window])
    return runs


def read_window(workspace: Workspace, window: WindowLike, start: int = 0, stop: int | None = None,
                dtype: str = "float32") -> np.ndarray:
    """Samples ``start:stop`` of one window (see ``WindowReader.read``)."""
    with WindowReader(workspace) as reader:
        return reader.read(window, start, stop, dtype)


def read_windows(workspace: Workspace, windows: Iterable[WindowLike], dtype: str = "float32") -> Iterator[np.ndarray]:
    """The audio of each window in turn, reusing the open file between windows of one source."""
    with WindowReader(workspace) as reader:
        for window in windows:
            yield reader.read(window, dtype=dtype)


def flac_bytes(samples: np.ndarray) -> bytes:
    """int16 ``samples`` as a standalone 16 kHz mono FLAC file (lossless; what the dataset embeds)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.ascontiguousarray(samples, dtype="<i2"), SAMPLE_RATE, format="FLAC",
                    subtype="PCM_16")
    return buffer.getvalue()
