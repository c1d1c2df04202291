"""Per-window decoding results, and the exact mode: each window decoded alone.

``--mode windows`` gives every window the text Whisper hears in exactly that
window's audio: one encoder pass per window, batched. It is the slower mode
(a 10 s window still costs a 30 s encoder pass) but its text matches the
window's audio to the sample, including words cut at its edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from label.backend_ct2 import Ct2Engine

if TYPE_CHECKING:
    from label.backend_hf import HfEngine


@dataclass(frozen=True)
class WindowDecode:
    """What the model said about one window, before filtering."""

    text: str
    language: str
    language_prob: float
    avg_logprob: float
    no_speech_prob: float
    token_count: int


def batches(count: int, size: int) -> list[range]:
    return [range(i, min(i + size, count)) for i in range(0, count, size)]


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


def decode_windows(engine: Ct2Engine, audios: Sequence[np.ndarray], language: str,
                   progress: Callable[[float], None] = lambda seconds: None) -> list[WindowDecode]:
    """Decode each window on its own, ``batch_size`` windows per model call."""
    results: list[WindowDecode] = []
    for rows in batches(len(audios), engine.options.batch_size):
        batch = [audios[i] for i in rows]
        encoded = engine.encode(batch)
        detected = engine.detect_language(encoded)
        for item in engine.decode(encoded, language, detected):
            results.append(WindowDecode(text=item.text, language=item.language,
                                        language_prob=item.language_prob,
                                        avg_logprob=item.avg_logprob,
                                        no_speech_prob=item.no_speech_prob,
                                        token_count=len(item.tokens)))
        progress(sum(len(a) for a in batch) / 16000)
    return results
