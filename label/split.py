"""Train/test split that never lets overlapping audio leak across splits.

Sources go whole to one split by a stable hash of their id, so adding a
source never moves another. A corpus with a single kept source is split by
time instead: the last ``test_fraction`` of its windows are test, and the
window straddling the boundary is dropped so no audio sits on both sides.
Whatever the hash says, a corpus of two or more windows always gets a
non-empty test and train split (with two overlapping windows only, that
means they overlap across the split: the one case where a gap is impossible).
"""

from __future__ import annotations

import hashlib
from typing import Sequence

from whcore.records import LabelRecord

TRAIN, TEST = "train", "test"


def source_bucket(source_id: str) -> float:
    """A stable number in [0, 1) from the source id (same on every machine and run)."""
    digest = hashlib.sha256(source_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def split_sources(source_ids: Sequence[str], test_fraction: float) -> dict[str, str]:
    """Split name per source by hash; the source with the smallest bucket is test if none is."""
    ids = sorted(set(source_ids))
    splits = {sid: TEST if source_bucket(sid) < test_fraction else TRAIN for sid in ids}
    if len(ids) >= 2 and TEST not in splits.values():
        splits[min(ids, key=source_bucket)] = TEST
    if len(ids) >= 2 and TRAIN not in splits.values():
        splits[max(ids, key=source_bucket)] = TRAIN
    return splits


def split_by_time(records: Sequence[LabelRecord], test_fraction: float) -> dict[int, str]:
    """Split of one source's windows (by index): tail is test, with a gap of one window.

    Windows that overlap the first test window's start are dropped (absent from
    the result), so no sample is in both splits.
    """
    ordered = sorted(records, key=lambda r: (r.start, r.index))
    if len(ordered) < 2:
        return {r.index: TRAIN for r in ordered}
    test_count = min(max(1, round(len(ordered) * test_fraction)), len(ordered) - 1)
    boundary = ordered[len(ordered) - test_count].start
    result = {r.index: TEST for r in ordered if r.start >= boundary}
    result.update({r.index: TRAIN for r in ordered if r.end <= boundary})
    if TRAIN not in result.values():
        # two overlapping windows only: a gap is impossible, an empty split is worse
        result[ordered[0].index] = TRAIN
    return result


def assign_splits(records: Sequence[LabelRecord], test_fraction: float) -> dict[tuple[str, int], str]:
    """Split per (source_id, index) for the kept records; absent = left out (time-split gap)."""
    sources = sorted({r.source_id for r in records})
    if len(sources) == 1:
        return {(sources[0], i): s for i, s in split_by_time(records, test_fraction).items()}
    splits = split_sources(sources, test_fraction)
    return {(r.source_id, r.index): splits[r.source_id] for r in records}
