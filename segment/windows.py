"""Where windows start and end, in samples: the pure planning rules.

All cuts are integer sample positions at 16 kHz, derived from the options
once (``WindowPlan``), so nothing downstream rounds seconds again:

- window ``k`` starts at ``k * hop`` and ends ``window`` samples later;
- the tail: after the last full window, one shorter window from the next
  start to the end of the audio is cut only if it adds at least ``min_tail``
  samples not already in the previous window. At most one tail window
  exists, so no window lies wholly inside another;
- audio shorter than one window gives one window of its length, if it is at
  least ``min_tail`` long, else none;
- with ``snap``, every cut except 0 and the end of the audio moves to the
  quietest 10 ms within ``±snap`` samples of where it would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from whcore.errors import UserError
from whcore.records import SAMPLE_RATE, seconds_to_samples

if TYPE_CHECKING:  # imported where used: a rerun with every source done never needs numpy (0.08 s)
    import numpy as np

SNAP_FRAME_SAMPLES = 160  # 10 ms: the span whose energy decides how quiet a cut point is
MIN_HOP_SECONDS = 0.1  # below this, start_ms names of windows could collide


@dataclass(frozen=True)
class WindowPlan:
    """Window geometry in samples at 16 kHz."""

    window: int  # samples per full window
    hop: int  # samples between consecutive starts (window - overlap)
    min_tail: int  # fewest new samples a tail window must add
    snap: int = 0  # search radius for quiet cut points, samples; 0 = cuts stay put

    @property
    def overlap(self) -> int:
        return self.window - self.hop

    def bounds(self, index: int) -> tuple[int, int]:
        """Unsnapped start and end of full window ``index``."""
        start = index * self.hop
        return start, start + self.window


def make_plan(window_s: float, overlap_s: float, min_tail_s: float, snap_s: float | None = None,
              sample_rate: int = SAMPLE_RATE) -> WindowPlan:
    """Validate the options (seconds) and turn them into a sample-exact plan."""
    if window_s <= 0:
        raise UserError(f"--window {window_s:g} must be greater than 0 seconds")
    if overlap_s < 0:
        raise UserError(f"--overlap {overlap_s:g} must not be negative")
    if overlap_s >= window_s:
        raise UserError(f"--overlap {overlap_s:g} must be smaller than --window {window_s:g}")
    if min_tail_s <= 0:
        raise UserError(f"--min-tail {min_tail_s:g} must be greater than 0 seconds")
    if snap_s is not None and snap_s <= 0:
        raise UserError(f"--snap {snap_s:g} must be greater than 0 seconds (leave it out to not snap)")
    window = seconds_to_samples(window_s, sample_rate)
    hop = window - seconds_to_samples(overlap_s, sample_rate)
    if hop < seconds_to_samples(MIN_HOP_SECONDS, sample_rate):
        raise UserError(f"--window {window_s:g} minus --overlap {overlap_s:g} must be at least "
                        f"{MIN_HOP_SECONDS:g} s")
    snap = seconds_to_samples(snap_s, sample_rate) if snap_s else 0
    if 2 * snap >= hop:
        raise UserError(f"--snap {snap_s:g} must be less than half of --window minus --overlap "
                        f"({hop / sample_rate / 2:g} s), or cuts could cross")
    return WindowPlan(window=window, hop=hop, min_tail=seconds_to_samples(min_tail_s, sample_rate),
                      snap=snap)


def full_window_count(total: int, plan: WindowPlan) -> int:
    """How many full windows fit in ``total`` samples."""
    if total < plan.window:
        return 0
    return (total - plan.window) // plan.hop + 1


def tail_start(total: int, full_count: int, previous_end: int, plan: WindowPlan) -> int | None:
    """Start of the tail window ending at ``total``, or None if the tail rule drops it.

    ``previous_end`` is where the last full window really ended (after any snap).
    """
    if full_count == 0:
        return 0 if total >= plan.min_tail else None
    if total - previous_end < plan.min_tail:
        return None
    return full_count * plan.hop


def plan_windows(total: int, plan: WindowPlan) -> list[tuple[int, int]]:
    """All unsnapped windows of ``total`` samples, the tail rule applied."""
    count = full_window_count(total, plan)
    windows = [plan.bounds(index) for index in range(count)]
    previous_end = windows[-1][1] if windows else 0
    start = tail_start(total, count, previous_end, plan)
    if start is not None:
        windows.append((start, total))
    return windows


def quietest_cut(audio: np.ndarray, offset: int, nominal: int, radius: int, total: int | None) -> int:
    """The sample position within ``nominal ± radius`` whose surrounding 10 ms is quietest.

    ``audio`` holds the samples from absolute position ``offset``; it must
    cover the search range plus half a frame each side where the audio has
    it. Ties (e.g. digital silence) go to the position nearest ``nominal``,
    so snapping never moves a cut without a reason.
    """
    import numpy as np

    low = max(nominal - radius, 0)
    high = nominal + radius if total is None else min(nominal + radius, total)
    half = SNAP_FRAME_SAMPLES // 2
    first = max(low - half, offset)
    last = min(high + half, offset + len(audio))
    segment = audio[first - offset:last - offset].astype(np.int64)
    energy_sum = np.concatenate(([0], np.cumsum(segment * segment)))
    candidates = np.arange(low, high + 1)
    left = np.clip(candidates - half, first, last) - first
    right = np.clip(candidates + half, first, last) - first
    width = np.maximum(right - left, 1)
    energy = (energy_sum[right] - energy_sum[left]) / width
    quiet = np.flatnonzero(energy == energy.min())
    nearest = quiet[np.argmin(np.abs(candidates[quiet] - nominal))]
    return int(candidates[nearest])
