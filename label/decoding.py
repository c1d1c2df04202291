"""Per-window decoding results, and the exact mode: each window decoded alone.

``--mode windows`` gives every window the text Whisper hears in exactly that
window's audio: one encoder pass per window, batched. It is the slower mode
(a 10 s window still costs a 30 s encoder pass) but its text matches the
window's audio to the sample, including words cut at its edges. The long-form
mode uses the same call for the windows its chunk decoding left empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import ctranslate2
import numpy as np

from label.backend_ct2 import FRAMES_PER_SECOND, Ct2Engine, Word
from whcore.records import SAMPLE_RATE

if TYPE_CHECKING:
    from label.backend_hf import HfEngine

# 30 s inputs per encoder call on CPU. The encoder's self-attention holds batch x heads x
# 1500 x 1500 float32 scores at once: 576 MB for whisper-base (8 heads) at batch 8, which
# alone pushed label's peak RSS past 1 GiB; at 4 it is 288 MB. Decoding still runs on the
# whole --batch-size (its memory is small), so only the encoder is split.
ENCODER_MEMORY_BATCH = 4


@dataclass(frozen=True)
class Confidence:
    """How sure the model was of a window's words (a word's probability is the mean of its
    tokens' probabilities, as faster-whisper computes it)."""

    mean_word_prob: float | None  # None: no word
    min_word_prob: float | None
    word_count: int

    @classmethod
    def of_words(cls, words: Sequence[Word]) -> "Confidence":
        probs = [word_probability(w) for w in words if w.token_logprobs]
        if not probs:
            return cls(None, None, 0)
        return cls(float(np.mean(probs)), float(min(probs)), len(probs))


NO_WORDS = Confidence(None, None, 0)


def word_probability(word: Word) -> float:
    return float(np.mean([math.exp(lp) for lp in word.token_logprobs]))


@dataclass(frozen=True)
class WindowDecode:
    """What the model said about one window, before filtering."""

    text: str
    language: str
    language_prob: float
    avg_logprob: float
    no_speech_prob: float
    token_count: int
    confidence: Confidence = NO_WORDS
    redecoded: bool = False  # long-form decoding left the window empty; this is its own decode


def batches(count: int, size: int) -> list[range]:
    return [range(i, min(i + size, count)) for i in range(0, count, size)]


def batched(items: Iterator, size: int) -> Iterator[list]:
    """Lists of up to ``size`` consecutive items of an iterator (consumed lazily)."""
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def detect_source_language(engine: "Ct2Engine | HfEngine", audios: Sequence[np.ndarray],
                           speech_ratios: Sequence[float], probe_count: int) -> tuple[str, float]:
    """Language of a source: mean language distribution of its most speech-like windows."""
    order = sorted(range(len(audios)), key=lambda i: -speech_ratios[i])[:max(1, probe_count)]
    totals: dict[str, float] = {}
    for rows in batches(len(order), engine.options.batch_size):
        for distribution in engine.language_probs_of([audios[order[i]] for i in rows]):
            for code, prob in distribution.items():
                totals[code] = totals.get(code, 0.0) + prob
    code = max(totals, key=totals.get)
    return code, totals[code] / len(order)


def encode(engine: Ct2Engine, audios: Sequence[np.ndarray]) -> ctranslate2.StorageView:
    """Encoder output of a batch, computed ``ENCODER_MEMORY_BATCH`` inputs at a time on CPU."""
    step = ENCODER_MEMORY_BATCH
    if len(audios) <= step or engine.options.device != "cpu":
        return engine.encode(audios)
    parts = [np.asarray(engine.encode(audios[i:i + step])) for i in range(0, len(audios), step)]
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(parts)))


def decode_batch(engine: Ct2Engine, batch: Sequence[np.ndarray], language: str) -> list[WindowDecode]:
    """Decode a few windows alone, then time their words (for the confidence figures)."""
    encoded = encode(engine, batch)
    detected = engine.detect_language(encoded)
    decoded = engine.decode(encoded, language, detected)
    frames = [int(round(len(a) / SAMPLE_RATE * FRAMES_PER_SECOND)) for a in batch]
    aligned = engine.align_words(encoded, language, [d.tokens for d in decoded], frames)
    return [WindowDecode(text=item.text, language=item.language, language_prob=item.language_prob,
                         avg_logprob=item.avg_logprob, no_speech_prob=item.no_speech_prob,
                         token_count=len(item.tokens), confidence=Confidence.of_words(words))
            for item, words in zip(decoded, aligned)]


def decode_windows(engine: Ct2Engine, read: Callable[[Sequence[int]], list[np.ndarray]], count: int,
                   language: str, progress: Callable[[float], None] = lambda seconds: None
                   ) -> list[WindowDecode]:
    """Decode ``count`` windows each on its own, ``batch_size`` per model call; ``read(rows)``
    returns the audio of those windows (so only one batch is in memory)."""
    results: list[WindowDecode] = []
    for rows in batches(count, engine.options.batch_size):
        batch = read(rows)
        results.extend(decode_batch(engine, batch, language))
        progress(sum(len(a) for a in batch) / SAMPLE_RATE)
    return results
