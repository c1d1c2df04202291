"""Pack windows into inputs of up to 30 s.

Whisper's encoder always takes 30 s of log-mel, so a 10 s window costs the
same compute as 30 s of speech: two thirds of it is padding. Packing joins
windows of one split (texts joined in the same order) until the next one
would pass 30 s. Two windows of one source that overlap in time never share
an input (the overlap would be heard twice and the text would repeat), and
splits are packed separately so no test audio reaches training.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    ordered = sorted(examples, key=lambda e: (e.source_id, e.start or 0.0, str(e.audio_path)))
    shortest = min((e.duration for e in ordered), default=0.0)
    packs: list[list[Example]] = []
    totals: list[float] = []
    open_indices: list[int] = []  # packs that still have room for the shortest example
    for example in ordered:
        for index in open_indices:
            fits = totals[index] + example.duration <= max_seconds + 1e-6
            if fits and not any(overlaps(example, other) for other in packs[index]):
                break
        else:
            index = len(packs)
            packs.append([])
            totals.append(0.0)
            open_indices.append(index)
        packs[index].append(example)
        totals[index] += example.duration
        if totals[index] + shortest > max_seconds + 1e-6:
            open_indices.remove(index)
    return [Pack(tuple(members)) for members in packs]


def unpacked(examples: list[Example]) -> list[Pack]:
    """One input per example (``--no-pack``)."""
    return [Pack((example,)) for example in examples]


def packing_report(examples: list[Example], packs: list[Pack],
                   max_seconds: float = MAX_INPUT_SECONDS) -> PackingReport:
    before = sum(max(0.0, max_seconds - e.duration) for e in examples)
    after = sum(max(0.0, max_seconds - p.duration) for p in packs)
    return PackingReport(len(examples), len(packs), before, after)
