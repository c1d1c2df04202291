"""Window audio in: 16 kHz mono float32 arrays, read only when and where needed.

Windows are read through ``whcore.window_audio`` (the source's FLAC that segment
stored, or a window's own WAV), which reads any sample range without the rest
and needs no ffmpeg process per window. A source's long-form audio is the timeline its
windows cover: ``Timeline`` reads any span of it from the windows that hold
that span, so labelling never needs the original download, sees exactly the
samples segment cut, and holds at most one batch of 30 s chunks in memory
however long the source is.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from whcore import window_audio
from whcore.records import WindowRecord, seconds_to_samples
from whcore.window_audio import inside_workspace  # noqa: F401 - label's modules take it from here
from whcore.workspace import Workspace


def read_windows(workspace: Workspace, windows: Sequence[WindowRecord]) -> list[np.ndarray]:
    """The audio of a few windows (callers pass one batch at a time)."""
    return list(window_audio.read_windows(workspace, windows))


class Timeline:
    """A source's audio as one sliceable sample sequence, read lazily from its windows.

    Each sample comes from the last window that starts at or before it (windows
    overlap; their shared samples are equal), gaps between windows read as
    silence. ``timeline[a:b]`` reads only the window files that span a..b.
    """

    def __init__(self, workspace: Workspace, windows: Sequence[WindowRecord]) -> None:
        ordered = sorted(windows, key=lambda w: (w.start, w.index))
        self._workspace = workspace
        self._windows = ordered
        self._starts = np.array([seconds_to_samples(w.start) for w in ordered], dtype=np.int64)
        ends = np.array([seconds_to_samples(w.end) for w in ordered], dtype=np.int64)
        # the samples each window supplies: from its start to the next window's start (or its end)
        self._owned_ends = np.minimum(ends, np.append(self._starts[1:], ends[-1:])) if len(ordered) else ends
        self._length = int(ends.max()) if len(ordered) else 0

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, span: slice) -> np.ndarray:
        start, stop, _ = span.indices(self._length)
        out = np.zeros(max(stop - start, 0), dtype=np.float32)
        if stop <= start:
            return out
        first = max(int(np.searchsorted(self._starts, start, side="right")) - 1, 0)
        last = int(np.searchsorted(self._starts, stop, side="left"))
        with window_audio.WindowReader(self._workspace) as reader:
            for i in range(first, last):
                lo, hi = max(start, int(self._starts[i])), min(stop, int(self._owned_ends[i]))
                if hi > lo:
                    offset = int(self._starts[i])
                    samples = reader.read(self._windows[i], lo - offset, hi - offset)
                    out[lo - start:lo - start + len(samples)] = samples
        return out
