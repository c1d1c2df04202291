"""Subtitle matching and packing stay linear(ithmic) in the input: 10 h of it in under 2 CPU-seconds.

Both functions are checked against the plain quadratic definition they replace
(every window against every cue and word; every example against every pack) on
random inputs, then timed on 10 hours: CPU time, not wall time, so a busy
machine does not fail them. The old code took about 100 s for the subtitles case.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from finetune.data import Example
from finetune.packing import Pack, overlaps, pack_examples
from label.subtitles import Cue, cue_words, reference_texts
from whcore.records import WindowRecord
from whcore.text import is_unspaced

TEN_HOURS_S = 36000.0
BUDGET_CPU_S = 2.0
HANZI = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可也你"


def cpu_seconds(work, *args):  # noqa: ANN001, ANN201 - a callable and its arguments
    started = time.process_time()
    result = work(*args)
    return result, time.process_time() - started


def window(index: int, start: float, end: float) -> WindowRecord:
    return WindowRecord(source_id="s", index=index, start=start, end=end, path=f"windows/s/{index}.wav",
                        rms_db=-20.0, speech_ratio=0.9)


def plain_reference_texts(cues: list[Cue], windows: list[WindowRecord], language: str) -> list[str | None]:
    words = [w for cue in cues for w in cue_words(cue, language)]
    joiner = "" if is_unspaced(language) else " "
    return [joiner.join(t for mid, t in words if w.start <= mid < w.end)
            if any(c.start < w.end and c.end > w.start for c in cues) else None for w in windows]


def plain_first_fit(examples: list[Example], max_seconds: float = 30.0) -> list[Pack]:
    by_split: dict[str, list[Example]] = {}
    for example in examples:
        by_split.setdefault(example.split, []).append(example)
    packs_out: list[Pack] = []
    for split in by_split.values():
        packs: list[list[Example]] = []
        totals: list[float] = []
        for e in sorted(split, key=lambda e: (e.source_id, e.start or 0.0, str(e.audio_path))):
            index = next((i for i in range(len(packs)) if totals[i] + e.duration <= max_seconds + 1e-6
                          and not any(overlaps(e, o) for o in packs[i])), len(packs))
            if index == len(packs):
                packs.append([])
                totals.append(0.0)
            packs[index].append(e)
            totals[index] += e.duration
        packs_out += [Pack(tuple(p)) for p in packs]
    return packs_out


def random_cues(rng: random.Random, language: str) -> list[Cue]:
    cues = []
    for _ in range(rng.randrange(0, 60)):  # unsorted, overlapping, zero-length cues included
        start = round(rng.uniform(0, 300), 2)
        end = start + round(rng.uniform(0, 8), 2)
        text = ("".join(rng.choice(HANZI) for _ in range(rng.randrange(1, 20))) if language == "zh"
                else " ".join(rng.choice(["a", "bb", "ccc"]) for _ in range(rng.randrange(1, 10))))
        cues.append(Cue(start, end, text))
    return cues


def test_reference_texts_equal_the_plain_definition() -> None:
    for seed in range(30):
        rng = random.Random(seed)
        language = rng.choice(["en", "zh"])
        cues = random_cues(rng, language)
        windows = [window(i, s, s + rng.choice([10.0, rng.uniform(0, 12)]))
                   for i, s in enumerate(rng.uniform(0, 310) for _ in range(80))]
        assert reference_texts(cues, windows, language) == plain_reference_texts(cues, windows, language), seed


def test_reference_texts_of_ten_hours_of_mandarin_characters() -> None:
    cues = [Cue(3.0 * k, 3.0 * k + 2.8, (HANZI[k % 40:] + HANZI)[:12]) for k in range(int(TEN_HOURS_S / 3))]
    windows = [window(i, 8.0 * i, 8.0 * i + 10.0) for i in range(int(TEN_HOURS_S / 8))]  # 10 s every 8 s
    texts, spent = cpu_seconds(reference_texts, cues, windows, "zh")
    assert spent <= BUDGET_CPU_S, f"{spent:.2f} CPU-s for 144,000 characters and 4,500 windows"
    assert texts[:20] == plain_reference_texts(cues[:60], windows[:20], "zh")  # the first 160 s, in full


def random_examples(rng: random.Random, count: int) -> list[Example]:
    examples = []
    for k in range(count):
        source = f"s{rng.randrange(8)}"
        if rng.random() < 0.15:  # a row without times: only its own file overlaps it
            start = end = None
            path = Path(f"/x/{source}_{rng.randrange(5)}.wav")
        else:
            start = round(rng.uniform(0, 200), 1)
            end = start + round(rng.choice([10.0, rng.uniform(0, 35)]), 2)
            path = Path(f"/x/{source}_{k}.wav")
        duration = rng.choice([10.0, round(rng.uniform(0.1, 35), 2)])
        examples.append(Example(path, "t", rng.choice(["train", "train", "test"]), source, start, end, duration))
    return examples


def test_packing_equals_the_plain_first_fit() -> None:
    for seed in range(40):
        rng = random.Random(seed)
        examples = random_examples(rng, rng.randrange(1, 400))
        assert list(pack_examples(examples)) == plain_first_fit(examples), seed


def test_packing_ten_hours_where_every_pack_stays_open() -> None:
    """11 s clips and one 1 s clip: each pack keeps 8 s free, so the plain scan visits them all."""
    examples, total = [], 0.0
    while total < TEN_HOURS_S:
        duration = 11.0 if examples else 1.0
        index = len(examples)
        examples.append(Example(Path(f"/x/{index}.wav"), "t", "train", f"src{index // 40}", total,
                                total + duration, duration))
        total += duration
    packs, spent = cpu_seconds(pack_examples, examples)
    assert spent <= BUDGET_CPU_S, f"{spent:.2f} CPU-s for {len(examples)} examples"
    assert sum(len(p.examples) for p in packs) == len(examples) and max(p.duration for p in packs) <= 30.0
