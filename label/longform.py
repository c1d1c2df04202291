"""Long-form mode: decode a source in 30 s chunks, give each window its words.

Whisper's encoder always sees 30 s, so a 10 s window pays for 30 s, and with
2 s overlap every second of audio is encoded 1.25 times. Decoding the source
timeline (rebuilt from its windows) in chunks of up to 30 s, cut at the
quietest moment near each chunk's end so words are rarely split, encodes each
second once. Word times from the alignment heads then place every word in the
windows whose span holds the word's midpoint (overlapping windows share the
words of their overlap, as their audio does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from label.backend_ct2 import CHUNK_SECONDS, FRAMES_PER_SECOND, Ct2Engine, Word
from label.decoding import WindowDecode, batches
from whcore.records import SAMPLE_RATE, WindowRecord, seconds_to_samples

CUT_SEARCH_SECONDS = 5.0  # look for the quietest cut point in the last 5 s of a chunk
CUT_FRAME_SECONDS = 0.05  # energy is compared in 50 ms frames
MIN_CHUNK_SECONDS = 1.0  # a tail shorter than this is merged into the previous chunk
MAX_MEDIAN_WORD_SECONDS = 0.7  # word-length cap for stretched words is twice the median, at most 1.4 s


@dataclass(frozen=True)
class ChunkResult:
    start: float  # seconds in the source
    end: float
    language: str
    language_prob: float
    no_speech_prob: float
    avg_logprob: float
    words: list[Word]  # times already in source seconds


def plan_chunks(audio: np.ndarray, max_seconds: float = CHUNK_SECONDS,
                search_seconds: float = CUT_SEARCH_SECONDS) -> list[tuple[int, int]]:
    """Sample spans of at most ``max_seconds`` that cover ``audio``, cut where it is quietest."""
    total, limit = len(audio), seconds_to_samples(max_seconds)
    frame = seconds_to_samples(CUT_FRAME_SECONDS)
    spans, start = [], 0
    while total - start > limit:
        lo = start + limit - seconds_to_samples(search_seconds)
        region = audio[lo:start + limit]
        frames = region[: len(region) // frame * frame].reshape(-1, frame)
        energy = np.square(frames).mean(axis=1)
        quietest = int(np.flatnonzero(energy <= energy.min() * 1.0001 + 1e-12)[-1])
        cut = lo + quietest * frame + frame // 2
        spans.append((start, cut))
        start = cut
    if total - start >= seconds_to_samples(MIN_CHUNK_SECONDS) or not spans:
        spans.append((start, total))
    else:
        spans[-1] = (spans[-1][0], total)
        if spans[-1][1] - spans[-1][0] > limit:  # cannot merge: keep the short tail on its own
            spans[-1] = (spans[-1][0], start)
            spans.append((start, total))
    return spans


def decode_chunks(engine: Ct2Engine, audio: np.ndarray, spans: Sequence[tuple[int, int]],
                  language: str, progress: Callable[[float], None] = lambda seconds: None
                  ) -> list[ChunkResult]:
    """Batched decoding of the chunks, then word alignment on the same encoder output."""
    results: list[ChunkResult] = []
    for rows in batches(len(spans), engine.options.batch_size):
        pieces = [audio[spans[i][0]:spans[i][1]] for i in rows]
        encoded = engine.encode(pieces)
        detected = engine.detect_language(encoded)
        decoded = engine.decode(encoded, language, detected)
        frames = [int(round(len(p) / SAMPLE_RATE * FRAMES_PER_SECOND)) for p in pieces]
        aligned = engine.align_words(encoded, language, [d.tokens for d in decoded], frames)
        for i, item, words in zip(rows, decoded, aligned):
            offset = spans[i][0] / SAMPLE_RATE
            shifted = [Word(w.text, w.start + offset, w.end + offset, w.token_logprobs) for w in words]
            results.append(ChunkResult(start=offset, end=spans[i][1] / SAMPLE_RATE,
                                       language=item.language, language_prob=item.language_prob,
                                       no_speech_prob=item.no_speech_prob,
                                       avg_logprob=item.avg_logprob, words=shifted))
        progress(sum(len(p) for p in pieces) / SAMPLE_RATE)
    return results


def _chunk_at(chunks: Sequence[ChunkResult], seconds: float) -> ChunkResult:
    for chunk in chunks:
        if chunk.start <= seconds < chunk.end:
            return chunk
    return chunks[-1]


def word_anchors(words: Sequence[Word]) -> np.ndarray:
    """The time that places each word in a window: its midpoint, or for a word stretched
    over a pause (longer than twice the median word, at most 1.4 s) a point near its end.

    Cross-attention alignment lets the first word after a pause start where the pause
    starts; its end is reliable, so the stretched start must not pull it into the window
    before (openai/whisper truncates such words the same way).
    """
    durations = np.array([w.end - w.start for w in words])
    positive = durations[durations > 0]
    cap = 2 * min(MAX_MEDIAN_WORD_SECONDS, float(np.median(positive))) if len(positive) else 0.0
    ends = np.array([w.end for w in words])
    return ends - np.minimum(durations, cap) / 2


def words_to_windows(chunks: Sequence[ChunkResult], windows: Sequence[WindowRecord]) -> list[WindowDecode]:
    """Each window's text and figures from the words anchored inside it."""
    words = [w for chunk in chunks for w in chunk.words]
    midpoints = np.concatenate([word_anchors(chunk.words) for chunk in chunks if chunk.words]) \
        if words else np.zeros(0)
    decodes = []
    for window in windows:
        inside = [words[i] for i in np.flatnonzero((midpoints >= window.start) & (midpoints < window.end))] \
            if len(words) else []
        chunk = _chunk_at(chunks, (window.start + window.end) / 2)
        logprobs = [lp for w in inside for lp in w.token_logprobs]
        decodes.append(WindowDecode(
            text="".join(w.text for w in inside).strip(),
            language=chunk.language, language_prob=chunk.language_prob,
            # an empty window inherits its chunk's score, so silence inside speech is not rewarded
            avg_logprob=float(np.mean(logprobs)) if logprobs else chunk.avg_logprob,
            no_speech_prob=chunk.no_speech_prob, token_count=len(logprobs)))
    return decodes


def decode_longform(engine: Ct2Engine, windows: Sequence[WindowRecord], timeline: np.ndarray,
                    language: str, progress: Callable[[float], None] = lambda seconds: None
                    ) -> list[WindowDecode]:
    """Window decodes for a whole source, decoded as one long recording."""
    chunks = decode_chunks(engine, timeline, plan_chunks(timeline), language, progress)
    return words_to_windows(chunks, windows)
