"""Music or other sound without speech in a window: the two VADs disagree, and the spectrum says which.

webrtcvad (segment's speech ratio) fires on nearly any sound: on 233 windows of real
instrumental music its ratio was 0.88-1.0 (5th-95th percentile), on applause-like
claps 0.99. Silero VAD (``label.vad_neural``) heard no speech frame at all in 95 % of
those windows, where it heard 0.8-0.94 of each window of read speech and at least
0.04 of a 10 s window holding one short recorded prompt (``bench/label_music.py``).
So a window where webrtcvad hears sound but Silero hears (almost) no speech holds
a sound that is not speech; it is called music when its spectrum is tonal: the share
of each frame's energy in its strongest 5 % of frequency bins, median over the
frames with sound (``tonality``), is 0.86-0.98 on the music, 0.78-0.82 on speech and
0.47-0.73 on hiss, white and pink noise and claps. Drum loops spread over both
sides; they are rejected either way, only the reason's name differs.
"""

from __future__ import annotations

import numpy as np

FRAME_SAMPLES = 512  # 32 ms at 16 kHz per spectrum frame
PEAK_BINS = 13  # the strongest 13 of 257 bins: 5 % of the spectrum
SOUND_FLOOR = 1e-4  # frames quieter than this share of the loudest frame's energy are left out


def tonality(audio: np.ndarray) -> float:
    """Median share of a frame's spectral energy in its strongest 5 % of bins (0..1)."""
    frames = len(audio) // FRAME_SAMPLES
    if frames == 0:
        return 0.0
    blocks = np.asarray(audio[:frames * FRAME_SAMPLES], dtype=np.float32).reshape(frames, FRAME_SAMPLES)
    power = np.abs(np.fft.rfft(blocks * np.hanning(FRAME_SAMPLES).astype(np.float32), axis=1)) ** 2
    energy = power.sum(axis=1)
    sounding = energy > energy.max() * SOUND_FLOOR if energy.max() > 0 else np.zeros(frames, dtype=bool)
    if not sounding.any():
        return 0.0
    top = np.partition(power[sounding], -PEAK_BINS, axis=1)[:, -PEAK_BINS:].sum(axis=1)
    return float(np.median(top / energy[sounding]))
