"""Records that flow between stages, each with a one-line JSON form.

source (harvest) -> window (segment) -> label (label). A stage reads the
previous stage's records and writes its own; nobody re-derives what another
stage already knows. Times are seconds in the source as floats named
``start`` / ``end``; sample counts come from ``seconds_to_samples`` only.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, TypeVar

SAMPLE_RATE = 16000  # Hz, what Whisper consumes
FLAC_FORMAT, WAV_FORMAT = "flac", "wav"  # segment --format: one FLAC per source, or one WAV per window
STORE_FORMATS = (FLAC_FORMAT, WAV_FORMAT)
MAX_SOURCE_ID_CHARS = 64

T = TypeVar("T")


def seconds_to_samples(seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Sample count for a duration, rounded to the nearest sample."""
    return int(round(seconds * sample_rate))


def samples_to_seconds(samples: int, sample_rate: int = SAMPLE_RATE) -> float:
    return samples / sample_rate


def sanitize_id(name: str) -> str:
    """A readable, filesystem- and URL-safe id from a title or file stem."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-.")
    return cleaned[:MAX_SOURCE_ID_CHARS] or "source"


def _from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a dict, ignoring keys a newer version may have added."""
    names = _field_names(cls)
    return cls(**{k: v for k, v in data.items() if k in names})


@functools.lru_cache(maxsize=None)
def _field_names(cls: type) -> frozenset[str]:
    """A record class's field names (``dataclasses.fields`` per record read cost more than the JSON)."""
    return frozenset(f.name for f in dataclasses.fields(cls))


class _JsonRecord:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]):  # noqa: ANN206 - returns cls
        return _from_dict(cls, data)


@dataclass
class Subtitle(_JsonRecord):
    """An uploaded subtitle track saved beside a source."""

    language: str
    kind: str  # "manual" (creator) or "automatic" (platform caption)
    path: str  # relative to the workspace
    ext: str = "vtt"


@dataclass
class SourceRecord(_JsonRecord):
    """One harvested source: where it came from, its licence and its audio."""

    source_id: str  # stable id: the extractor's video id, or sanitised file stem
    extractor: str  # yt-dlp extractor key, or "local"
    original_id: str  # id as the extractor reports it (or the file's absolute path)
    url: str  # webpage URL (or file URL)
    title: str = ""
    uploader: str = ""
    channel: str = ""
    channel_id: str = ""
    duration: float | None = None  # seconds
    upload_date: str = ""  # YYYYMMDD
    license: str = ""  # as the platform states it; "user-provided" for local files
    language: str = ""
    audio_path: str = ""  # relative to the workspace
    sha256: str = ""  # of the audio file
    subtitles: list[Subtitle] = field(default_factory=list)
    status: str = "downloaded"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SourceRecord":
        record = _from_dict(cls, data)
        record.subtitles = [s if isinstance(s, Subtitle) else Subtitle.from_dict(s)
                            for s in record.subtitles]
        return record

    @classmethod
    def read(cls, path: Path) -> "SourceRecord":
        """Load ``sources/<id>.json``; ValueError/TypeError if it is not a record."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass
class WindowRecord(_JsonRecord):
    """One cut window of a source, as written by segment."""

    source_id: str
    index: int
    start: float  # seconds in the source
    end: float  # seconds in the source
    path: str  # relative to the workspace: the source's FLAC, or the window's own WAV (segment --format wav)
    offset: int = 0  # sample of ``path`` where the window begins (0 for a window's own WAV)
    rms_db: float = -120.0  # RMS level, dBFS
    speech_ratio: float = 0.0  # share of 30 ms frames the VAD calls speech

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class LabelRecord(_JsonRecord):
    """A window's pseudo-label with the quality figures the filters judged."""

    source_id: str
    index: int
    start: float
    end: float
    path: str  # where the window's samples are, as in its WindowRecord
    offset: int = 0
    text: str = ""
    language: str = ""
    language_prob: float = 0.0
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 0.0
    chars_per_second: float = 0.0
    speech_ratio: float = 0.0
    # Confidence from the words timed inside the window (a word's probability is the mean
    # of its tokens' probabilities); None when the window has no word.
    mean_word_prob: float | None = None
    min_word_prob: float | None = None
    word_count: int = 0
    redecoded: bool = False  # True: long-form decoding left it empty, so it was decoded alone
    # Silero VAD over the window (label/vad_neural.py): mean speech probability of its 32 ms
    # frames, the seconds of frames at or above 0.5 (speech) and at or above 0.15 (speech-like);
    # None where it did not run
    vad_speech_prob: float | None = None
    vad_speech_seconds: float | None = None
    vad_voice_seconds: float | None = None
    # share of each 32 ms frame's spectral energy in its strongest 5 % of bins, median over the
    # frames with sound (label/music.py): high for music's steady harmonics; None where not measured
    tonality: float | None = None
    # speech-to-noise ratio in dB estimated blind from the waveform (WADA-SNR, label/snr.py):
    # noise, hum and music beds lower it; None where not measured or digitally silent
    snr_db: float | None = None
    # 1 - CER between this text and a second model's text for the window (label --check-model);
    # None when no check model ran
    agreement: float | None = None
    flags: list[str] = field(default_factory=list)  # reasons it was rejected; empty = kept
    reference: str | None = None  # creator-subtitle text for the window, if any
    reference_cer: float | None = None

    @property
    def kept(self) -> bool:
        return not self.flags


def covered_seconds(spans: Iterable[tuple[float, float]]) -> float:
    """Seconds of audio under the union of ``(start, end)`` spans.

    Windows overlap (10 s windows every 8 s), so summing their lengths would
    count the overlap twice: 9 windows of a 70 s source would claim 90 s.
    """
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total
