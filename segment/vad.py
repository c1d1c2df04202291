"""Cheap per-window signal statistics: RMS level and a speech ratio.

``label`` uses them to skip windows with no speech without decoding them
again. webrtcvad (the WebRTC GMM detector) is chosen because it is tiny and
fast (~0.16 ms per second of audio) where a neural VAD would cost more than
the decode itself.

The detector runs once over the whole stream on a fixed 30 ms grid (frame
``i`` covers samples ``[480 i, 480 i + 480)``), not once per window: each
sample is judged once although windows overlap, and the detector's noise
model adapts continuously as it was designed to. A window's speech ratio is
the share of grid frames lying wholly inside it. The result depends only on
the audio and the mode, so reruns and resumed runs agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import webrtcvad

if TYPE_CHECKING:  # imported where used: a rerun with every source done never needs numpy (0.08 s)
    import numpy as np

from whcore.records import SAMPLE_RATE

VAD_FRAME_SAMPLES = 480  # 30 ms at 16 kHz, the longest frame webrtcvad accepts
VAD_FRAME_BYTES = VAD_FRAME_SAMPLES * 2
SILENCE_DB = -120.0  # RMS floor reported for digital silence, dBFS
FULL_SCALE = 32768.0  # int16 full scale
DEFAULT_VAD_MODE = 2  # webrtcvad aggressiveness 0 (keeps most) .. 3 (drops most non-speech)


@dataclass(frozen=True)
class WindowStats:
    rms_db: float  # RMS level, dBFS
    speech_ratio: float  # share of the 30 ms frames inside the window the VAD calls speech, 0..1


def rms_db(samples: np.ndarray) -> float:
    """RMS level of int16 ``samples`` in dBFS (``SILENCE_DB`` for silence or no samples)."""
    import numpy as np

    if len(samples) == 0:
        return SILENCE_DB
    # Exact integer sum of squares (|x|^2 <= 2^30 fits int32): no BLAS, same on every machine.
    power = int(np.square(samples.astype(np.int32)).sum(dtype=np.int64)) / len(samples)
    if power <= 0.0:
        return SILENCE_DB
    return max(SILENCE_DB, 10.0 * math.log10(power / (FULL_SCALE * FULL_SCALE)))


class StreamVad:
    """webrtcvad over a sample stream; answers speech ratios for spans of it.

    Holds one flag per 30 ms frame from ``forget_before`` on, so memory stays
    bounded by about one window.
    """

    def __init__(self, mode: int = DEFAULT_VAD_MODE) -> None:
        self._vad = webrtcvad.Vad(mode)
        self._pending = b""  # bytes of the frame not yet complete
        self._flags = bytearray()  # 1 = speech, for frames first_frame, first_frame + 1, ...
        self._first_frame = 0

    @property
    def frames_seen(self) -> int:
        return self._first_frame + len(self._flags)

    def feed(self, samples: np.ndarray) -> None:
        """Judge every 30 ms frame completed by ``samples`` (the stream's next samples)."""
        data = self._pending + samples.astype("<i2", copy=False).tobytes()
        whole = len(data) - len(data) % VAD_FRAME_BYTES
        is_speech = self._vad.is_speech
        self._flags.extend(is_speech(data[i:i + VAD_FRAME_BYTES], SAMPLE_RATE)
                           for i in range(0, whole, VAD_FRAME_BYTES))
        self._pending = data[whole:]

    def speech_ratio(self, start: int, end: int) -> float:
        """Share of speech among the frames wholly inside samples ``[start, end)``."""
        first = -(-start // VAD_FRAME_SAMPLES)  # ceil: frames starting at or after start
        last = end // VAD_FRAME_SAMPLES  # frames ending at or before end
        if last > self.frames_seen:
            raise ValueError(f"speech ratio asked up to sample {end} before it was fed")
        if last <= first:
            return 0.0
        flags = self._flags[first - self._first_frame:last - self._first_frame]
        return flags.count(1) / len(flags)

    def forget_before(self, sample: int) -> None:
        """Drop the flags of frames starting before ``sample`` (no later window needs them)."""
        frame = min(sample // VAD_FRAME_SAMPLES, self.frames_seen)
        if frame > self._first_frame:
            del self._flags[:frame - self._first_frame]
            self._first_frame = frame
