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
from dataclasses import dataclass
from pathlib import Path

from finetune.data import Example
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


def pack_examples(examples: list[Example], max_seconds: float = MAX_INPUT_SECONDS) -> list[Pack]:
    """First-fit packing in (source, start) order; each pack stays in one split.

    An example longer than ``max_seconds`` is left alone in its own input
    (Whisper's feature extractor will cut it; the data is not ours to drop).
    """
    by_split: dict[str, list[Example]] = {}
    for example in examples:
        by_split.setdefault(example.split, []).append(example)
    packs: list[Pack] = []
    for split_examples in by_split.values():
        packs.extend(_pack_one_split(split_examples, max_seconds))
    return packs


def _pack_one_split(examples: list[Example], max_seconds: float) -> list[Pack]:
    """First fit: each example goes to the earliest pack it fits in without overlapping a member.

    The earliest pack with room is found in O(log packs) by ``_FirstFit``; the packs an
    example must avoid are those holding an overlapping example of its own source, which
    (examples sorted by start) are only the few recent ones still running when it starts.
    So 10 h of windows pack in well under a second instead of scanning every open pack.
    """
    ordered = sorted(examples, key=lambda e: (e.source_id, e.start or 0.0, str(e.audio_path)))
    bound = max_seconds + 1e-6
    fit = _FirstFit(len(ordered))
    packs: list[list[Example]] = []
    running = _SourceMembers()
    for example in ordered:
        running.enter(example)
        index = fit.first(example.duration, bound, running.packs_overlapping(example))
        if index == len(packs):
            packs.append([])
        packs[index].append(example)
        fit.add(index, example.duration)
        running.add(example, index)
    return [Pack(tuple(members)) for members in packs]


class _FirstFit:
    """Pack totals under a segment tree of minima: the first pack with room in O(log n).

    ``total + seconds <= bound`` is tested on the same floats, in the same order, as a
    scan of every pack would, so the packs are exactly those of the plain first fit.
    """

    def __init__(self, capacity: int) -> None:
        self.size = 1
        while self.size < max(capacity, 1):
            self.size *= 2
        self.low = [0.0] * (2 * self.size)  # minimum total under each node
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
        self.source: str | None = None
        self.timed: list[tuple[float, float, int]] = []  # (end, start, pack) of timed examples, a heap
        self.by_file: dict[Path, set[int]] = {}  # audio file -> packs of all its examples
        self.untimed_by_file: dict[Path, set[int]] = {}  # ... of those without times

    def enter(self, example: Example) -> None:
        if example.source_id != self.source:
            self.source, self.timed, self.by_file, self.untimed_by_file = example.source_id, [], {}, {}
        elif _timed(example):  # later examples start no earlier: one that ended cannot overlap them
            while self.timed and self.timed[0][0] <= example.start:  # type: ignore[operator]
                heapq.heappop(self.timed)

    def packs_overlapping(self, example: Example) -> set[int]:
        """The packs holding an example ``overlaps`` says ``example`` overlaps."""
        if not _timed(example):
            return set(self.by_file.get(example.audio_path, ()))
        avoid = set(self.untimed_by_file.get(example.audio_path, ()))
        avoid.update(pack for end, start, pack in self.timed
                     if end > example.start and start < example.end)  # type: ignore[operator]
        return avoid

    def add(self, example: Example, pack: int) -> None:
        self.by_file.setdefault(example.audio_path, set()).add(pack)
        if _timed(example):
            heapq.heappush(self.timed, (example.end, example.start, pack))  # type: ignore[arg-type]
        else:
            self.untimed_by_file.setdefault(example.audio_path, set()).add(pack)


def _timed(example: Example) -> bool:
    return example.start is not None and example.end is not None


def unpacked(examples: list[Example]) -> list[Pack]:
    """One input per example (``--no-pack``)."""
    return [Pack((example,)) for example in examples]


def packing_report(examples: list[Example], packs: list[Pack],
                   max_seconds: float = MAX_INPUT_SECONDS) -> PackingReport:
    before = sum(max(0.0, max_seconds - e.duration) for e in examples)
    after = sum(max(0.0, max_seconds - p.duration) for p in packs)
    return PackingReport(len(examples), len(packs), before, after)
