"""Label-ready workspaces built by the real stages, for label's tests and benches.

Audio with known content (espeak-ng speech with known text, silence, noise,
tones) is written to WAV files, taken in by ``python -m harvest`` (local
files) and cut by ``python -m segment``, both run in-process through their
CLI entry points, so label is always tested on what those stages really write.
Creator subtitles, which harvest only downloads from video sites, are added to
the source record the way harvest records them.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile

from harvest.cli import main as harvest_main
from segment.cli import main as segment_main
from whcore.media import ffmpeg_executable
from whcore.records import SAMPLE_RATE, SourceRecord, Subtitle, seconds_to_samples


@dataclass(frozen=True)
class AudioSource:
    source_id: str  # also the file stem harvest derives the id from
    audio: np.ndarray  # 16 kHz mono float32
    subtitles_vtt: str | None = None  # creator subtitles (WebVTT text), if any
    subtitles_language: str = "en"


def decode_file(path: Path) -> np.ndarray:
    """Any media file to 16 kHz mono float32 via ffmpeg."""
    command = [ffmpeg_executable(), "-nostdin", "-v", "error", "-i", str(path), "-ac", "1",
               "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg could not decode {path}: {result.stderr.decode(errors='replace')}")
    return np.frombuffer(result.stdout, dtype=np.float32).copy()


def espeak(text: str, voice: str = "en", words_per_minute: int = 160) -> np.ndarray:
    """Speech for ``text`` from espeak-ng, resampled to 16 kHz."""
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(wav), text],
                       check=True, capture_output=True)
        return decode_file(wav)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(seconds_to_samples(seconds), dtype=np.float32)


def white_noise(seconds: float, level: float = 0.1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(seconds_to_samples(seconds)) * level).astype(np.float32)


def pink_noise(seconds: float, level: float = 0.1, seed: int = 0) -> np.ndarray:
    """1/f noise by shaping white noise's spectrum."""
    count = seconds_to_samples(seconds)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(count))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    pink = np.fft.irfft(spectrum, n=count)
    return (pink / (np.abs(pink).max() + 1e-9) * level * 3).astype(np.float32)


def tone(seconds: float, hz: float = 440.0, level: float = 0.3) -> np.ndarray:
    t = np.arange(seconds_to_samples(seconds)) / SAMPLE_RATE
    return (np.sin(2 * np.pi * hz * t) * level).astype(np.float32)


def fit(audio: np.ndarray, seconds: float) -> np.ndarray:
    """``audio`` centred in exactly ``seconds`` (padded with silence or trimmed)."""
    target = seconds_to_samples(seconds)
    if len(audio) >= target:
        return audio[:target]
    before = (target - len(audio)) // 2
    return np.pad(audio, (before, target - len(audio) - before)).astype(np.float32)


def add_subtitles(root: Path, source_id: str, vtt: str, language: str) -> None:
    """Save a creator subtitle track beside the source and list it in its record, as harvest does."""
    path = root / "sources" / "subs" / f"{source_id}.{language}.vtt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(vtt, encoding="utf-8")
    record_path = root / "sources" / f"{source_id}.json"
    record = SourceRecord.read(record_path)
    record.subtitles.append(Subtitle(language=language, kind="manual",
                                     path=path.relative_to(root).as_posix()))
    record_path.write_text(json.dumps(record.to_dict(), ensure_ascii=False), encoding="utf-8")


def build_workspace_from_files(root: Path, files: Sequence[Path], window: float = 10.0, overlap: float = 0.0,
                               extra_segment_args: Sequence[str] = ()) -> Path:
    """A workspace where harvest and segment have run on audio ``files``; returns its root."""
    assert harvest_main([*map(str, files), "--workspace", str(root)]) == 0
    assert segment_main(["--workspace", str(root), "--window", str(window), "--overlap", str(overlap),
                         *extra_segment_args]) == 0
    return root


def build_workspace(root: Path, sources: Sequence[AudioSource], window: float = 10.0,
                    overlap: float = 0.0, extra_segment_args: Sequence[str] = ()) -> Path:
    """A workspace where harvest and segment have run on ``sources``; returns its root."""
    inputs = root.parent / f"{root.name}-inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    files = []
    for source in sources:
        path = inputs / f"{source.source_id}.wav"
        soundfile.write(str(path), source.audio, SAMPLE_RATE, subtype="PCM_16")
        files.append(path)
    assert harvest_main([*map(str, files), "--workspace", str(root)]) == 0
    for source in sources:
        if source.subtitles_vtt is not None:
            add_subtitles(root, source.source_id, source.subtitles_vtt, source.subtitles_language)
    assert segment_main(["--workspace", str(root), "--window", str(window), "--overlap", str(overlap),
                         *extra_segment_args]) == 0
    return root


# Plain read sentences for synthetic speech in tests and benches (espeak reads them cleanly).
SENTENCES = [
    "The river flows quietly past the old stone bridge at the edge of town.",
    "Every morning the baker opens his shop before the sun comes up.",
    "Scientists have found a new kind of frog in the rain forest.",
    "Please remember to close the windows before you leave the house.",
    "The museum will be closed on Monday for cleaning and repairs.",
    "Children learn languages quickly when they hear them every day.",
    "A strong wind blew the leaves across the empty playground.",
    "The train to the airport leaves every twenty minutes.",
    "She planted tomatoes, beans and carrots in her small garden.",
    "Good maps helped the sailors find their way across the ocean.",
    "The library lends books, music and films to everyone for free.",
    "After the storm, the fishermen repaired their nets on the beach.",
]
