"""Build label-ready workspaces from raw audio, for tests and benchmarks.

Writes what harvest and segment would (SourceRecord, 16 kHz WAV windows,
``windows.jsonl``, segment DONE lines) without importing those stages, so the
label stage can be tested and measured on its own with known audio: espeak
speech with known text, silence, white and pink noise, tones.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import webrtcvad

from whcore.journal import Journal, setup_logging, source_unit
from whcore.records import SAMPLE_RATE, SourceRecord, WindowRecord, seconds_to_samples
from whcore.workspace import Workspace, open_workspace

VAD_FRAME_SAMPLES = 480  # 30 ms at 16 kHz
VAD_AGGRESSIVENESS = 2


@dataclass(frozen=True)
class SyntheticSource:
    source_id: str
    audio: np.ndarray  # 16 kHz mono float32
    title: str = ""
    subtitles_vtt: str | None = None  # creator subtitles (WebVTT text), if any


def decode_file(path: Path) -> np.ndarray:
    """Any media file to 16 kHz mono float32 via ffmpeg."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1",
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


def vad_speech_ratio(audio: np.ndarray) -> float:
    """Share of 30 ms frames webrtcvad calls speech."""
    vad = webrtcvad.Vad(VAD_AGGRESSIVENESS)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    frames = [pcm[i:i + VAD_FRAME_SAMPLES] for i in range(0, len(pcm) - VAD_FRAME_SAMPLES + 1,
                                                           VAD_FRAME_SAMPLES)]
    if not frames:
        return 0.0
    return sum(vad.is_speech(f.tobytes(), SAMPLE_RATE) for f in frames) / len(frames)


def window_spans(duration: float, window: float, overlap: float) -> list[tuple[float, float]]:
    """(start, end) of fixed windows with ``overlap`` seconds shared by neighbours."""
    hop = window - overlap
    spans, start = [], 0.0
    while True:
        end = min(start + window, duration)
        spans.append((round(start, 3), round(end, 3)))
        if end >= duration:
            return spans
        start += hop


def write_source(workspace: Workspace, journal: Journal, source: SyntheticSource,
                 window: float, overlap: float) -> list[WindowRecord]:
    """Write one source's record, windows and segment DONE line."""
    record = SourceRecord(source_id=source.source_id, extractor="local", original_id=source.source_id,
                          url=f"file:///synthetic/{source.source_id}.wav",
                          title=source.title or source.source_id, uploader="whisper-harvest tests",
                          duration=len(source.audio) / SAMPLE_RATE, license="user-provided",
                          audio_path=f"sources/audio/{source.source_id}.wav")
    if source.subtitles_vtt is not None:
        vtt = workspace.sources_dir / "subtitles" / f"{source.source_id}.en.vtt"
        vtt.parent.mkdir(parents=True, exist_ok=True)
        vtt.write_text(source.subtitles_vtt, encoding="utf-8")
        record.subtitles = [{"language": "en", "kind": "manual", "path": workspace.relative(vtt)}]
        record = SourceRecord.from_dict(record.to_dict())
    workspace.sources_dir.mkdir(parents=True, exist_ok=True)
    workspace.source_record_path(source.source_id).write_text(json.dumps(record.to_dict()), encoding="utf-8")
    folder = workspace.source_windows_dir(source.source_id)
    folder.mkdir(parents=True, exist_ok=True)
    windows = []
    for index, (start, end) in enumerate(window_spans(len(source.audio) / SAMPLE_RATE, window, overlap)):
        chunk = source.audio[seconds_to_samples(start):seconds_to_samples(end)]
        path = folder / f"{source.source_id}_{int(round(start * 1000))}_{int(round(end * 1000))}.wav"
        soundfile.write(str(path), chunk, SAMPLE_RATE, subtype="PCM_16")
        level = float(np.sqrt(np.mean(np.square(chunk)))) if len(chunk) else 0.0
        windows.append(WindowRecord(source_id=source.source_id, index=index, start=start, end=end,
                                    path=workspace.relative(path),
                                    rms_db=round(20 * np.log10(max(level, 1e-6)), 2),
                                    speech_ratio=round(vad_speech_ratio(chunk), 4)))
    manifest = workspace.windows_manifest_path(source.source_id)
    manifest.write_text("".join(json.dumps(w.to_dict()) + "\n" for w in windows), encoding="utf-8")
    journal.mark_done(source_unit(source.source_id), "synthetic", hashed=[manifest])
    return windows


def build_workspace(root: Path, sources: list[SyntheticSource], window: float = 10.0,
                    overlap: float = 2.0) -> Workspace:
    """A workspace where harvest and segment are done for ``sources``."""
    workspace = open_workspace(root, create=True)
    setup_logging(workspace, "segment")
    journal = Journal(workspace, "segment")
    for source in sources:
        write_source(workspace, journal, source, window, overlap)
    return workspace
