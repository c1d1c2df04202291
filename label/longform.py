"""Long-form labelling: decode a source in 30 s chunks and give each window its words.

The encoder always sees 30 s, so decoding 10 s windows alone wastes two thirds
of every encoder pass; decoding the source once in 30 s chunks and mapping the
aligned words onto the windows is 2-3x faster. Chunks are cut at the quietest
point of their last 5 s so few words straddle a cut. Chunks whose windows the
VAD found silent are not decoded at all.

Everything streams: chunks are read from the window files one batch at a time
(``audio.Timeline``), windows get their words as soon as the decoded chunks
cover them, and chunks no window still needs are dropped, so memory does not
grow with the length of the source.

Every figure a window gets is its own: the words anchored inside it, their
probabilities and log-probabilities; only the no-speech probability (one per
decoded input in Whisper) comes from the chunk(s) under the window, weighted
by how much of the window each covers. Greedy decoding without timestamps
sometimes stops early and leaves the end of a chunk undecoded: a window left
without a word although its VAD says speech is decoded again on its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from label.backend_ct2 import CHUNK_SECONDS, FRAMES_PER_SECOND, Ct2Engine, Word
from label.decoding import Confidence, WindowDecode, batched, decode_batch, encode
from whcore.records import SAMPLE_RATE, WindowRecord, seconds_to_samples

CUT_SEARCH_SECONDS = 5.0  # look for the quietest cut point in the last 5 s of a chunk
CUT_FRAME_SECONDS = 0.05  # energy is compared in 50 ms frames
MIN_CHUNK_SECONDS = 1.0  # no cut leaves a last chunk shorter than this
MAX_MEDIAN_WORD_SECONDS = 0.7  # word-length cap for stretched words is twice the median, at most 1.4 s
REDECODE_MIN_SPEECH_RATIO = 0.3  # an empty window with at least this VAD speech share is decoded alone


@dataclass(frozen=True)
class ChunkResult:
    start: float  # seconds in the source
    end: float
    language: str
    language_prob: float
    no_speech_prob: float
    avg_logprob: float
    words: list[Word]  # times already in source seconds


def plan_chunks(audio: Sequence, max_seconds: float = CHUNK_SECONDS,
                search_seconds: float = CUT_SEARCH_SECONDS) -> Iterator[tuple[int, int]]:
    """Sample spans of at most ``max_seconds`` that cover ``audio``, cut where it is quietest.

    ``audio`` is anything with ``len`` and float-array slices (an array or a
    ``Timeline``); only the 5 s searched for each cut are read here. No cut leaves a
    last chunk shorter than ``MIN_CHUNK_SECONDS`` (a sliver the decoder would guess at).
    """
    total, limit = len(audio), seconds_to_samples(max_seconds)
    frame = seconds_to_samples(CUT_FRAME_SECONDS)
    start = 0
    while total - start > limit:
        hi = min(start + limit, total - seconds_to_samples(MIN_CHUNK_SECONDS))
        lo = min(start + limit - seconds_to_samples(search_seconds), hi - frame)
        region = np.asarray(audio[lo:hi])
        frames = region[: len(region) // frame * frame].reshape(-1, frame)
        energy = np.square(frames).mean(axis=1)
        quietest = int(np.flatnonzero(energy <= energy.min() * 1.0001 + 1e-12)[-1])
        cut = lo + quietest * frame + frame // 2
        yield start, cut
        start = cut
    yield start, total


def decode_chunks(engine: Ct2Engine, audio: Sequence, spans: Sequence[tuple[int, int]],
                  language: str) -> list[ChunkResult]:
    """Batched decoding of the chunks, then word alignment on the same encoder output."""
    pieces = [np.asarray(audio[a:b]) for a, b in spans]
    encoded = encode(engine, pieces)
    detected = engine.detect_language(encoded)
    decoded = engine.decode(encoded, language, detected)
    frames = [int(round(len(p) / SAMPLE_RATE * FRAMES_PER_SECOND)) for p in pieces]
    aligned = engine.align_words(encoded, language, [d.tokens for d in decoded], frames)
    results = []
    for (a, b), item, words in zip(spans, decoded, aligned):
        offset = a / SAMPLE_RATE
        shifted = [Word(w.text, w.start + offset, w.end + offset, w.token_logprobs) for w in words]
        results.append(ChunkResult(start=offset, end=b / SAMPLE_RATE, language=item.language,
                                   language_prob=item.language_prob, no_speech_prob=item.no_speech_prob,
                                   avg_logprob=item.avg_logprob, words=shifted))
    return results


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


def covering_chunks(chunks: Sequence[ChunkResult], window: WindowRecord) -> list[tuple[ChunkResult, float]]:
    """The chunks under a window and the seconds of the window each covers."""
    found = [(c, min(c.end, window.end) - max(c.start, window.start)) for c in chunks]
    found = [(c, seconds) for c, seconds in found if seconds > 0]
    if found:
        return found
    nearest = min(chunks, key=lambda c: abs((c.start + c.end) / 2 - (window.start + window.end) / 2))
    return [(nearest, 1.0)]


def words_to_windows(chunks: Sequence[ChunkResult], windows: Sequence[WindowRecord]) -> list[WindowDecode]:
    """Each window's text and figures from the words anchored inside it."""
    words = [w for chunk in chunks for w in chunk.words]
    anchors = np.concatenate([word_anchors(c.words) for c in chunks if c.words]) if words else np.zeros(0)
    decodes = []
    for window in windows:
        inside = [words[i] for i in np.flatnonzero((anchors >= window.start) & (anchors < window.end))]
        under = covering_chunks(chunks, window)
        weights = np.array([seconds for _, seconds in under])
        main = max(under, key=lambda pair: pair[1])[0]
        logprobs = [lp for w in inside for lp in w.token_logprobs]
        decodes.append(WindowDecode(
            text="".join(w.text for w in inside).strip(),
            language=main.language, language_prob=main.language_prob,
            # an empty window inherits its chunk's score, so silence inside speech is not rewarded
            avg_logprob=float(np.mean(logprobs)) if logprobs else main.avg_logprob,
            no_speech_prob=float(np.average([c.no_speech_prob for c, _ in under], weights=weights)),
            token_count=len(logprobs), confidence=Confidence.of_words(inside)))
    return decodes


def needs_redecode(window: WindowRecord, decode: WindowDecode) -> bool:
    """An empty window inside VAD speech: long-form decoding skipped it, not silence."""
    return not decode.text and window.speech_ratio >= REDECODE_MIN_SPEECH_RATIO


class SpeechMap:
    """Which sample spans of a source any window's VAD found speech in (from segment's
    per-window speech ratios, so no audio is read to decide)."""

    def __init__(self, windows: Sequence[WindowRecord], silent_below: float | None) -> None:
        self.silent_below = silent_below
        self.starts = np.array([seconds_to_samples(w.start) for w in windows], dtype=np.int64)
        self.ends = np.array([seconds_to_samples(w.end) for w in windows], dtype=np.int64)
        self.ratios = np.array([w.speech_ratio for w in windows], dtype=np.float64)

    def is_silent(self, span: tuple[int, int]) -> bool:
        """Every window touching ``span`` has a speech ratio below ``silent_below``."""
        if self.silent_below is None:
            return False
        touching = (self.starts < span[1]) & (self.ends > span[0])
        return bool(touching.any()) and float(self.ratios[touching].max()) < self.silent_below


def decode_or_skip(engine: Ct2Engine, timeline: Sequence, spans: Sequence[tuple[int, int]], language: str,
                   speech: SpeechMap) -> list[ChunkResult]:
    """Decoded chunks, except VAD-silent ones, which get an empty result without an encoder pass."""
    heard = [span for span in spans if not speech.is_silent(span)]
    decoded = iter(decode_chunks(engine, timeline, heard, language) if heard else [])
    return [next(decoded) if not speech.is_silent(span) else
            silent_chunk(span[0] / SAMPLE_RATE, span[1] / SAMPLE_RATE) for span in spans]


def stream_longform(engine: Ct2Engine, timeline: Sequence, windows: Sequence[WindowRecord], language: str,
                    progress: Callable[[float], None] = lambda seconds: None,
                    silent_below: float | None = None) -> Iterator[WindowDecode]:
    """Window decodes in ``windows`` order (sorted by start), yielded as soon as the chunks
    decoded so far cover each window; chunks no pending window needs are dropped.

    With ``silent_below``, a chunk whose every window has a VAD speech ratio below it is
    not decoded (its windows get no words): the no-speech filter rejects such windows
    whatever Whisper would say, so the encoder pass would be wasted."""
    speech = SpeechMap(windows, silent_below)
    decoded = (decode_or_skip(engine, timeline, spans, language, speech)
               for spans in batched(plan_chunks(timeline), engine.options.batch_size))
    yield from assign_words(decoded, windows, progress)


def assign_words(decoded: Iterable[list[ChunkResult]], windows: Sequence[WindowRecord],
                 progress: Callable[[float], None] = lambda seconds: None) -> Iterator[WindowDecode]:
    """Window decodes from the decoded chunks, one batch of chunks at a time (see
    ``stream_longform``); the batches may also have been decoded elsewhere
    (``label/cluster.py``): the same batches give the same decodes."""
    pending = list(windows)
    done = 0
    kept: list[ChunkResult] = []
    for batch in decoded:
        kept += batch
        progress(sum(c.end - c.start for c in batch))
        frontier = kept[-1].end
        ready = done
        while ready < len(pending) and pending[ready].end <= frontier:
            ready += 1
        yield from words_to_windows(kept, pending[done:ready])
        done = ready
        if done < len(pending):
            kept = [c for c in kept if c.end > pending[done].start]
    if done < len(pending):
        yield from words_to_windows(kept or [silent_chunk(pending[done].start, pending[-1].end)], pending[done:])


def silent_chunk(start: float, end: float) -> ChunkResult:
    """What audio left undecoded gets (VAD-silent, or past the end of the timeline): no
    words, certain silence, no language."""
    return ChunkResult(start, end, "", 0.0, 1.0, -10.0, [])


def decode_longform(engine: Ct2Engine, windows: Sequence[WindowRecord], timeline: Sequence, language: str,
                    read: Callable[[Sequence[int]], list[np.ndarray]],
                    progress: Callable[[float], None] = lambda seconds: None,
                    silent_below: float | None = None) -> list[WindowDecode]:
    """Window decodes for a whole source: long-form, then empty speech windows decoded alone.

    ``windows`` must be sorted by start; ``read(rows)`` returns the audio of those windows;
    ``silent_below``: see ``stream_longform``.
    """
    decodes = list(stream_longform(engine, timeline, windows, language, progress, silent_below))
    for rows in redecode_batches(windows, decodes, engine.options.batch_size):
        for i, redone in zip(rows, decode_batch(engine, read(rows), language)):
            decodes[i] = dataclasses.replace(redone, redecoded=True)
    return decodes


def redecode_batches(windows: Sequence[WindowRecord], decodes: Sequence[WindowDecode],
                     batch_size: int) -> list[list[int]]:
    """The rows of the windows long-form decoding left empty inside speech, in model-call batches."""
    todo = [i for i, (w, d) in enumerate(zip(windows, decodes)) if needs_redecode(w, d)]
    return list(batched(iter(todo), batch_size))
