"""Per-window quality figures and the LabelRecord they go into.

Figures are computed on the decoded text (before script conversion, which
changes no lengths that matter here): gzip compression ratio as Whisper
computes it, and characters per second of *speech*: the characters of the
text's spoken form (``label.spoken``: "50%" counts as "fifty percent", spaces
excluded, so spaced and unspaced scripts compare fairly) over the seconds the
VAD heard speech in (Silero's speech-like frames where it ran, else webrtcvad's
share of the window), so a short answer in an otherwise quiet window and a
sentence full of numbers are not "slow".
"""

from __future__ import annotations

import zlib

from label.decoding import WindowDecode
from label.measures import AudioMeasures
from label.spoken import spoken_chars
from label.vad_neural import VadFigures
from whcore.records import LabelRecord, WindowRecord
from whcore.text import character_error_rate


def compression_ratio(text: str) -> float:
    """len(utf-8) / len(zlib(utf-8)); above 2.4 Whisper treats text as a repetition loop."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


MIN_SPEECH_SHARE = 0.2  # floor of webrtcvad's share used for the rate (it misses quiet speech)
MIN_SPEECH_SECONDS = 0.5  # floor of the speech seconds the rate is measured over (a word or two)


def speech_seconds(window_seconds: float, speech_ratio: float, vad: VadFigures | None) -> float:
    """Seconds of speech in a window: Silero's speech-like frames where it ran, else webrtcvad's share
    of the window (floored: that VAD misses quiet speech); never below MIN_SPEECH_SECONDS."""
    if vad is not None:
        heard = vad.voice_seconds
    else:
        heard = window_seconds * min(1.0, max(speech_ratio, MIN_SPEECH_SHARE))
    return min(window_seconds, max(heard, MIN_SPEECH_SECONDS)) if window_seconds > 0 else 0.0


def chars_per_second(text: str, seconds: float, language: str = "") -> float:
    """Characters of the spoken form of ``text`` (spaces excluded) per second of speech."""
    return spoken_chars(text, language) / seconds if seconds > 0 else 0.0


def label_record(window: WindowRecord, decode: WindowDecode, measures: AudioMeasures | None = None,
                 language: str = "") -> LabelRecord:
    """The unfiltered record of one window (flags are set by ``filters.apply_filters``);
    ``language`` is the one the source was decoded in (the spoken form depends on it)."""
    vad = None if measures is None else measures.vad
    seconds = speech_seconds(window.duration, window.speech_ratio, vad)
    return LabelRecord(
        source_id=window.source_id, index=window.index, start=window.start, end=window.end,
        path=window.path, offset=window.offset, text=decode.text, language=decode.language,
        language_prob=round(decode.language_prob, 4), avg_logprob=round(decode.avg_logprob, 4),
        no_speech_prob=round(decode.no_speech_prob, 4),
        compression_ratio=round(compression_ratio(decode.text), 4),
        chars_per_second=round(chars_per_second(decode.text, seconds, language or decode.language), 4),
        speech_ratio=window.speech_ratio,
        mean_word_prob=_rounded(decode.confidence.mean_word_prob),
        min_word_prob=_rounded(decode.confidence.min_word_prob),
        word_count=decode.confidence.word_count, redecoded=decode.redecoded,
        vad_speech_prob=None if vad is None else round(vad.speech_prob, 4),
        vad_speech_seconds=None if vad is None else round(vad.speech_seconds, 3),
        vad_voice_seconds=None if vad is None else round(vad.voice_seconds, 3),
        tonality=None if measures is None else round(measures.tonality, 4),
        snr_db=None if measures is None or measures.snr_db is None else round(measures.snr_db, 2))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def text_agreement(text: str, other: str, language: str) -> float:
    """1 - CER between two models' texts for a window (scored as label's CER gate scores),
    floored at 0; two texts that normalise to nothing agree fully, one of them alone not at all."""
    return max(0.0, 1.0 - character_error_rate(text, other, language))
