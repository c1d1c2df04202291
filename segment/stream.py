"""Cut windows out of a stream of samples while holding about one window.

The ring keeps only the samples from the next window's start (minus the snap
radius) onwards: at most ``window + 2 * snap`` samples plus one read chunk,
so memory does not grow with the source's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from segment.windows import SNAP_FRAME_SAMPLES, WindowPlan, quietest_cut, tail_start


@dataclass(frozen=True)
class Cut:
    """One window cut from the stream."""

    index: int  # 0-based position among the source's windows
    start: int  # first sample, absolute in the source
    end: int  # one past the last sample
    samples: np.ndarray  # int16, a view into the ring: copy or consume before the next cut


class SampleRing:
    """A growable-once buffer of the most recent samples, addressed by absolute position."""

    def __init__(self, capacity: int) -> None:
        self._data = np.empty(capacity, dtype=np.int16)
        self.offset = 0  # absolute position of _data[0]
        self._used = 0  # valid samples in _data

    @property
    def end(self) -> int:
        """Absolute position one past the newest sample."""
        return self.offset + self._used

    def append(self, chunk: np.ndarray) -> None:
        if self._used + len(chunk) > len(self._data):
            grown = np.empty(self._used + len(chunk), dtype=np.int16)
            grown[:self._used] = self._data[:self._used]
            self._data = grown
        self._data[self._used:self._used + len(chunk)] = chunk
        self._used += len(chunk)

    def drop_before(self, position: int) -> None:
        """Forget samples before absolute ``position`` (moving the rest to the front)."""
        drop = min(max(position - self.offset, 0), self._used)
        if drop:
            keep = self._used - drop
            self._data[:keep] = self._data[drop:self._used]
            self._used = keep
            self.offset += drop

    def view(self, start: int, end: int) -> np.ndarray:
        return self._data[start - self.offset:end - self.offset]

    def held(self) -> np.ndarray:
        return self._data[:self._used]


def snap_margin(plan: WindowPlan) -> int:
    """Samples a snapped cut looks at on each side: the radius plus half an energy frame.

    Cuts are decided only once this much audio is held on both sides, so
    they never depend on how the pipe happened to chunk the stream.
    """
    return plan.snap + SNAP_FRAME_SAMPLES // 2 if plan.snap else 0


def ring_capacity(plan: WindowPlan, chunk_samples: int) -> int:
    """Samples the ring must hold so it never grows."""
    return plan.window + 2 * snap_margin(plan) + chunk_samples


def cut_stream(chunks: Iterable[np.ndarray], plan: WindowPlan, chunk_samples: int) -> Iterator[Cut]:
    """Yield the windows of the audio in ``chunks``, as ``windows.plan_windows`` places them."""
    ring = SampleRing(ring_capacity(plan, chunk_samples))
    margin = snap_margin(plan)
    index = 0
    previous_end = 0
    for chunk in chunks:
        ring.append(chunk)
        # A full window is final once the audio reaches past its end's snap range.
        while plan.bounds(index)[1] + margin <= ring.end:
            cut = _full_window(ring, plan, index, total=None)
            yield cut
            previous_end = cut.end
            index += 1
            ring.drop_before(plan.bounds(index)[0] - margin)
    total = ring.end
    while plan.bounds(index)[1] <= total:
        cut = _full_window(ring, plan, index, total=total)
        yield cut
        previous_end = cut.end
        index += 1
    start = tail_start(total, index, previous_end, plan)
    if start is not None:
        if start > 0 and plan.snap:
            start = quietest_cut(ring.held(), ring.offset, start, plan.snap, total)
        yield Cut(index, start, total, ring.view(start, total))


def _full_window(ring: SampleRing, plan: WindowPlan, index: int, total: int | None) -> Cut:
    start, end = plan.bounds(index)
    if plan.snap:
        held = ring.held()
        if start > 0:
            start = quietest_cut(held, ring.offset, start, plan.snap, total)
        if total is None or end < total:
            end = quietest_cut(held, ring.offset, end, plan.snap, total)
    return Cut(index, start, end, ring.view(start, end))
