"""Pack windows into inputs of up to 30 s.

Whisper's encoder always takes 30 s of log-mel, so a 10 s window costs the
same compute as 30 s of speech: two thirds of it is padding. Packing joins
windows of one split (texts joined in the same order) until the next one
would pass 30 s. Two windows of one source that overlap in time never share
an input (the overlap would be heard twice and the text would repeat), and
splits are packed separately so no test audio reaches training.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from finetune.table import Example, ExampleTable, Rows
from finetune.options import MAX_INPUT_SECONDS
from whcore.text import join_texts


@dataclass(frozen=True)
class Pack:
    """One model input: examples played back to back, their texts joined in order."""

    examples: tuple[Example, ...]

    @property
    def duration(self) -> float:
        return sum(e.duration for e in self.examples)

    def text(self, language: str | None) -> str:
        """The examples' texts joined as ``language`` writes them (no spaces inside zh/ja/th…)."""
        return join_texts([e.text for e in self.examples], language)

    @property
    def split(self) -> str:
        return self.examples[0].split


@dataclass(frozen=True)
class PackingReport:
    """How much encoder padding packing saved on one split."""

    windows: int
    inputs: int
    padding_before_s: float  # seconds of padding with one window per input
    padding_after_s: float

    @property
    def saved_fraction(self) -> float:
        return 1.0 - self.padding_after_s / self.padding_before_s if self.padding_before_s else 0.0

    def describe(self, split: str) -> str:
        return (f"{split}: {self.windows} windows -> {self.inputs} inputs of <= "
                f"{MAX_INPUT_SECONDS:.0f} s; padding {self.padding_before_s / 3600:.2f} h -> "
                f"{self.padding_after_s / 3600:.2f} h ({self.saved_fraction:.0%} saved)")


def overlaps(a: Example, b: Example) -> bool:
    """True if two examples are the same stretch of one source (partly or wholly)."""
    if a.source_id != b.source_id:
        return False
    if None in (a.start, a.end, b.start, b.end):
        return (a.audio_path, a.row) == (b.audio_path, b.row)  # times unknown: only the same audio overlaps
    return a.start < b.end and b.start < a.end  # type: ignore[operator]


class PackList(Rows[Pack]):
    """Packs as index ranges into one ``ExampleTable``: a ``Pack`` is made when one is read,
    so the packing of a 10,000 h corpus costs 8 bytes a window, not a Python object."""

    def __init__(self, table: ExampleTable, members: np.ndarray, sizes: np.ndarray) -> None:
        self.table, self.members = table, members
        self.bounds = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def _row(self, i: int) -> Pack:
        rows = self.members[self.bounds[i]:self.bounds[i + 1]].tolist()
        return Pack(tuple(self.table[row] for row in rows))

    def text_bytes(self) -> np.ndarray:
        """UTF-8 bytes of each pack's joined text (a space between members counted)."""
        if not len(self):
            return np.zeros(0, np.int64)
        sizes = np.add.reduceat(self.table.text_sizes[self.members].astype(np.int64), self.bounds[:-1])
        return sizes + np.diff(self.bounds) - 1

    def durations(self) -> np.ndarray:
        """Seconds of audio in each pack."""
        if not len(self):
            return np.zeros(0)
        return np.add.reduceat(self.table.durations[self.members], self.bounds[:-1])


def pack_examples(examples: Iterable[Example] | ExampleTable, max_seconds: float = MAX_INPUT_SECONDS) -> PackList:
    """First-fit packing in (source, start) order; each pack stays in one split.

    An example longer than ``max_seconds`` is left alone in its own input
    (Whisper's feature extractor will cut it; the data is not ours to drop).
    """
    table = ExampleTable.of(examples)
    ranks = (_ranks(table.sources), _ranks([str(path) for path in table.files]))  # once for all splits
    codes, first_seen = np.unique(table.split_codes, return_index=True)
    members, sizes = [], []
    for code in codes[np.argsort(first_seen)]:  # splits in the order they first appear
        split_members, split_sizes = _pack_one_split(table, ranks, np.flatnonzero(table.split_codes == code),
                                                     max_seconds)
        members.append(split_members)
        sizes.append(split_sizes)
    return PackList(table, np.concatenate(members) if members else np.zeros(0, np.int64),
                    np.concatenate(sizes) if sizes else np.zeros(0, np.int64))


def _pack_one_split(table: ExampleTable, ranks: tuple[np.ndarray, np.ndarray], rows: np.ndarray,
                    max_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """First fit of ``rows``: (the rows pack by pack, each pack's size). ``ranks``: each source's and
    file's place in sorted order (``_ranks``), so the order is (source, start, file) as sorted() gave.

    Each example goes to the earliest pack it fits in without overlapping a member.
    The earliest pack with room is found in O(log packs) by ``_FirstFit``; the packs an
    example must avoid are those holding an overlapping example of its own source, which
    (examples sorted by start) are only the few recent ones still running when it starts.
    So 10 h of windows pack in well under a second instead of scanning every open pack.
    """
    source_rank, file_rank = ranks
    starts = table.starts[rows]
    order = rows[np.lexsort((file_rank[table.file_codes[rows]], np.where(np.isnan(starts), 0.0, starts),
                             source_rank[table.source_codes[rows]]))]  # stable, as sorted() was
    bound = max_seconds + 1e-6
    fit = _FirstFit(len(order))
    pack_of = np.empty(len(order), np.int64)
    running = _SourceMembers()
    for first in range(0, len(order), CHUNK_ROWS):
        chunk = order[first:first + CHUNK_ROWS]
        columns = (table.source_codes[chunk], table.file_codes[chunk], table.starts[chunk], table.ends[chunk],
                   table.durations[chunk])
        for offset, (source, file, start, end, seconds) in enumerate(zip(*(c.tolist() for c in columns))):
            member = _Member(source, file, start, end)
            running.enter(member)
            index = fit.first(seconds, bound, running.packs_overlapping(member))
            pack_of[first + offset] = index
            fit.add(index, seconds)
            running.add(member, index)
    return order[np.argsort(pack_of, kind="stable")], np.bincount(pack_of, minlength=fit.opened)


CHUNK_ROWS = 4096  # rows turned into Python numbers at a time while packing


def _ranks(values: Sequence[str]) -> np.ndarray:
    """Each value's place in sorted order (code -> rank), so numpy sorts as Python's sorted() would."""
    ranks = np.empty(len(values), np.int64)
    ranks[sorted(range(len(values)), key=values.__getitem__)] = np.arange(len(values))
    return ranks


@dataclass(frozen=True, slots=True)
class _Member:
    """What overlap needs of one example: its source and file (codes) and times (NaN: unknown)."""

    source: int
    file: int
    start: float
    end: float

    @property
    def timed(self) -> bool:
        return not (math.isnan(self.start) or math.isnan(self.end))


class _FirstFit:
    """Pack totals under a segment tree of minima: the first pack with room in O(log n).

    ``total + seconds <= bound`` is tested on the same floats, in the same order, as a
    scan of every pack would, so the packs are exactly those of the plain first fit.
    """

    def __init__(self, capacity: int) -> None:
        self.size = 1
        while self.size < max(capacity, 1):
            self.size *= 2
        self.low = array("d", bytes(16 * self.size))  # minimum total under each node (all 0.0)
        self.opened = 0

    def add(self, index: int, seconds: float) -> None:
        self.opened = max(self.opened, index + 1)
        node = index + self.size
        self.low[node] += seconds
        while node > 1:
            node //= 2
            self.low[node] = min(self.low[2 * node], self.low[2 * node + 1])

    def first(self, seconds: float, bound: float, avoid: set[int]) -> int:
        """The first opened pack with room for ``seconds`` outside ``avoid``, else a new one."""
        start = 0
        while (index := self._leftmost(1, 0, self.size, start, seconds, bound)) is not None:
            if index not in avoid:
                return index
            start = index + 1
        return self.opened

    def _leftmost(self, node: int, lo: int, hi: int, start: int, seconds: float, bound: float) -> int | None:
        if hi <= start or lo >= self.opened or not self.low[node] + seconds <= bound:
            return None
        if hi - lo == 1:
            return lo
        mid = (lo + hi) // 2
        found = self._leftmost(2 * node, lo, mid, start, seconds, bound)
        return found if found is not None else self._leftmost(2 * node + 1, mid, hi, start, seconds, bound)


class _SourceMembers:
    """The current source's examples a later one may overlap, and the packs they are in."""

    def __init__(self) -> None:
        self.source: int | None = None
        self.timed: list[tuple[float, float, int]] = []  # (end, start, pack) of timed examples, a heap
        self.by_file: dict[int, set[int]] = {}  # audio file -> packs of all its examples
        self.untimed_by_file: dict[int, set[int]] = {}  # ... of those without times

    def enter(self, member: _Member) -> None:
        if member.source != self.source:
            self.source, self.timed, self.by_file, self.untimed_by_file = member.source, [], {}, {}
        elif member.timed:  # later examples start no earlier: one that ended cannot overlap them
            while self.timed and self.timed[0][0] <= member.start:
                heapq.heappop(self.timed)

    def packs_overlapping(self, member: _Member) -> set[int]:
        """The packs holding an example ``overlaps`` says ``member`` overlaps."""
        if not member.timed:
            return set(self.by_file.get(member.file, ()))
        avoid = set(self.untimed_by_file.get(member.file, ()))
        avoid.update(pack for end, start, pack in self.timed if end > member.start and start < member.end)
        return avoid

    def add(self, member: _Member, pack: int) -> None:
        self.by_file.setdefault(member.file, set()).add(pack)
        if member.timed:
            heapq.heappush(self.timed, (member.end, member.start, pack))
        else:
            self.untimed_by_file.setdefault(member.file, set()).add(pack)


def unpacked(examples: Iterable[Example] | ExampleTable) -> PackList:
    """One input per example (``--no-pack``)."""
    table = ExampleTable.of(examples)
    return PackList(table, np.arange(len(table)), np.ones(len(table), np.int64))


def packing_report(examples: Iterable[Example] | ExampleTable, packs: Sequence[Pack],
                   max_seconds: float = MAX_INPUT_SECONDS) -> PackingReport:
    durations = ExampleTable.of(examples).durations
    packed = packs.durations() if isinstance(packs, PackList) else np.array([p.duration for p in packs])
    before = float(np.maximum(0.0, max_seconds - durations).sum())
    after = float(np.maximum(0.0, max_seconds - packed).sum())
    return PackingReport(len(durations), len(packs), before, after)
