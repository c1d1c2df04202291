"""Check that a file really is decodable audio before it becomes a source.

PyAV bundles FFmpeg's demuxers and decoders in-process, so the check needs no
ffprobe binary (imageio-ffmpeg ships ffmpeg alone) and no subprocess per file.
A truncated or mislabelled download fails here, not three stages later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

PROBE_FRAMES = 50  # audio frames decoded to prove the stream is readable (~1 s of Opus)


@dataclass(frozen=True)
class AudioProbe:
    """What the probe learnt about a file."""

    codec: str
    sample_rate: int  # Hz
    channels: int
    duration: float | None  # seconds, from the container (None if it does not say)


class NotAudioError(Exception):
    """The file has no decodable audio stream; the message says what FFmpeg saw."""


def probe_audio(path: Path) -> AudioProbe:
    """Open ``path``, find its audio stream and decode its first frames."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise NotAudioError("no audio stream in the file")
            stream = container.streams.audio[0]
            decoded = 0
            for _frame in container.decode(stream):
                decoded += 1
                if decoded >= PROBE_FRAMES:
                    break
            if decoded == 0:
                raise NotAudioError("the audio stream holds no decodable frames")
            return AudioProbe(codec=stream.codec_context.name, sample_rate=stream.codec_context.sample_rate,
                              channels=stream.codec_context.channels, duration=_duration(container, stream))
    except av.error.FFmpegError as error:
        raise NotAudioError(f"FFmpeg cannot decode it ({error.strerror or error})") from None


def _duration(container: "av.container.InputContainer", stream: "av.AudioStream") -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return round(float(stream.duration * stream.time_base), 3)
    if container.duration is not None:
        return round(container.duration / av.time_base, 3)
    return None
