"""Which packs each optimizer step trains on: a pure function of (seed, step), so a
resumed run trains on exactly the data it would have without the interruption.

A plain shuffle of a sharded corpus reads a random shard for every pack: each
read either keeps that shard's parsed footer open (2.4 MB for a 500 MB shard of
174 row groups, so a loader's memory grew with the number of shards) or parses
it again (5–40 ms on the build machine), and reads a whole row group (16 windows,
~3 MB) for the one pack that needs it. Like WebDataset's and ``datasets``'
streaming shuffles, the order here shuffles at two levels: each epoch the shards
are put in a random order, and the packs of ``SHARDS_TOGETHER`` shards at a time
are shuffled together. A step then mixes thousands of windows of dozens of
sources, and the loader keeps only a few shards open (a 100 h pass opened one 17
times in all). Packs of an audiofolder or CSV (whole files, not Parquet rows)
form one block: a plain shuffle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finetune.packing import PackList
from finetune.table import NO_ROW

SHARDS_TOGETHER = 2  # shards whose packs are shuffled together (finetune.audio keeps this many open)
EPOCHS_CACHED = 2  # epoch orders kept (a step can straddle two epochs)


class StepOrder:
    """The packs of each step: epoch ``e``'s order is a permutation drawn from (seed, e)."""

    def __init__(self, count: int, seed: int, blocks: np.ndarray | None = None) -> None:
        self.count, self.seed = count, seed
        self.blocks = blocks if blocks is not None and len(np.unique(blocks)) > 1 else None
        self._epochs: dict[int, np.ndarray] = {}

    def indices(self, step: int, batch: int) -> list[int]:
        """Pack indices of optimizer step ``step`` (0-based), ``batch`` of them."""
        indices = []
        for position in range(step * batch, (step + 1) * batch):
            epoch, offset = divmod(position, self.count)
            indices.append(int(self.epoch(epoch)[offset]))
        return indices

    def epoch(self, epoch: int) -> np.ndarray:
        order = self._epochs.get(epoch)
        if order is None:
            if len(self._epochs) >= EPOCHS_CACHED:
                self._epochs.pop(min(self._epochs))
            order = self._epochs[epoch] = self._draw(np.random.default_rng([self.seed, epoch]))
        return order

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        if self.blocks is None:
            return rng.permutation(self.count)
        by_block = np.argsort(self.blocks, kind="stable")
        _, starts = np.unique(self.blocks[by_block], return_index=True)
        ends = np.append(starts[1:], len(by_block))
        shuffled = rng.permutation(len(starts))
        parts = []
        for first in range(0, len(shuffled), SHARDS_TOGETHER):
            chosen = shuffled[first:first + SHARDS_TOGETHER]
            parts.append(rng.permutation(np.concatenate([by_block[starts[b]:ends[b]] for b in chosen])))
        return np.concatenate(parts)


def pack_blocks(packs: Sequence) -> np.ndarray | None:
    """The shard of each pack's first window (``PackList`` of Parquet rows), else None: no blocks."""
    if not isinstance(packs, PackList) or not len(packs):
        return None
    table = packs.table
    firsts = packs.members[packs.bounds[:-1]]
    if (table.groups[firsts] == NO_ROW).any():
        return None
    return table.file_codes[firsts]
