"""Per-window quality figures and the LabelRecord they go into.

Figures are computed on the decoded text (before script conversion, which
changes no lengths that matter here): gzip compression ratio as Whisper
computes it, and characters per second of *speech* (spaces excluded, so
spaced and unspaced scripts compare fairly; the window's duration times its
VAD speech share, so a short sentence padded with silence is not "slow").
"""

from __future__ import annotations

import zlib

from label.decoding import WindowDecode
from whcore.records import LabelRecord, WindowRecord
from whcore.text import character_error_rate


def compression_ratio(text: str) -> float:
    """len(utf-8) / len(zlib(utf-8)); above 2.4 Whisper treats text as a repetition loop."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


MIN_SPEECH_SHARE = 0.2  # floor of the VAD share used for the rate (VAD misses quiet speech)


def chars_per_second(text: str, seconds: float, speech_ratio: float = 1.0) -> float:
    """Non-space characters per second of speech in a window of ``seconds``."""
    speech_seconds = seconds * min(1.0, max(speech_ratio, MIN_SPEECH_SHARE))
    return sum(not c.isspace() for c in text) / speech_seconds if speech_seconds > 0 else 0.0


def label_record(window: WindowRecord, decode: WindowDecode) -> LabelRecord:
    """The unfiltered record of one window (flags are set by ``filters.apply_filters``)."""
    return LabelRecord(
        source_id=window.source_id, index=window.index, start=window.start, end=window.end,
        path=window.path, offset=window.offset, text=decode.text, language=decode.language,
        language_prob=round(decode.language_prob, 4), avg_logprob=round(decode.avg_logprob, 4),
        no_speech_prob=round(decode.no_speech_prob, 4),
        compression_ratio=round(compression_ratio(decode.text), 4),
        chars_per_second=round(chars_per_second(decode.text, window.duration, window.speech_ratio), 4),
        speech_ratio=window.speech_ratio,
        mean_word_prob=_rounded(decode.confidence.mean_word_prob),
        min_word_prob=_rounded(decode.confidence.min_word_prob),
        word_count=decode.confidence.word_count, redecoded=decode.redecoded)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def text_agreement(text: str, other: str, language: str) -> float:
    """1 - CER between two models' texts for a window (scored as label's CER gate scores),
    floored at 0; two texts that normalise to nothing agree fully, one of them alone not at all."""
    return max(0.0, 1.0 - character_error_rate(text, other, language))
