"""A neural voice-activity detector beside segment's webrtcvad: Silero VAD.

webrtcvad is a GMM novelty detector: it calls music, applause and most steady
noise "speech", so on a music-heavy channel its speech ratio says little.
Silero VAD is a small LSTM trained on speech against many kinds of noise and
music (its authors' multi-domain ROC-AUC 0.96 against WebRTC's 0.73), and its
ONNX model ships inside faster-whisper's wheel, which label already depends on,
so it runs offline through onnxruntime (also a faster-whisper dependency) and
costs no download. It answers a speech probability per 32 ms frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from whcore.records import SAMPLE_RATE

FRAME_SAMPLES = 512  # 32 ms at 16 kHz: the frame Silero VAD v6 takes at this rate
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
SPEECH_THRESHOLD = 0.5  # a frame with speech probability at or above this is speech (Silero's own default)
# A frame at or above this is at least speech-like: what the speaking rate is measured over. On the
# real clips of bench/label_quality.py, Silero gives a speaker with a cold or in falsetto 0.1-0.3
# where others get 0.8, so counting only frames >= 0.5 made correct labels "too fast"
# (bench/label_rate.py); on real music, claps and hiss 95 % of windows have < 0.35 s of such frames.
VOICE_THRESHOLD = 0.15


@dataclass(frozen=True)
class VadFigures:
    """What Silero VAD heard in one window."""

    speech_prob: float  # mean speech probability over the window's frames, 0..1
    speech_share: float  # share of frames at or above SPEECH_THRESHOLD, 0..1
    speech_seconds: float  # seconds of those frames
    voice_seconds: float  # seconds of frames at or above VOICE_THRESHOLD (the speaking rate's time base)


@lru_cache(maxsize=1)
def _model():
    from faster_whisper.vad import get_vad_model

    return get_vad_model()


def frame_probabilities(audio: np.ndarray) -> np.ndarray:
    """Speech probability of each 32 ms frame of 16 kHz mono ``audio`` (the last frame zero-padded)."""
    if len(audio) == 0:
        return np.zeros(0, dtype=np.float32)
    padded = np.pad(np.asarray(audio, dtype=np.float32), (0, (-len(audio)) % FRAME_SAMPLES))
    return np.asarray(_model()(padded), dtype=np.float32).reshape(-1)


def vad_figures(audio: np.ndarray) -> VadFigures:
    """Mean probability, speech share and speech seconds of one window."""
    probs = frame_probabilities(audio)
    if len(probs) == 0:
        return VadFigures(0.0, 0.0, 0.0, 0.0)
    seconds = len(audio) / SAMPLE_RATE
    speech, voice = int((probs >= SPEECH_THRESHOLD).sum()), int((probs >= VOICE_THRESHOLD).sum())
    return VadFigures(speech_prob=float(probs.mean()), speech_share=speech / len(probs),
                      speech_seconds=min(speech * FRAME_SECONDS, seconds),
                      voice_seconds=min(voice * FRAME_SECONDS, seconds))
