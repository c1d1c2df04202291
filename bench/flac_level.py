"""How many MB an audio hour takes in segment's FLAC store, per kind of audio and FLAC level.

    .venv/bin/python bench/flac_level.py

Issue 21's goal is <= 60 MB per source hour. ``bench/scale.py`` measures 70 MB/h
on its generated speech-like audio under noise, a worst case; this bench asks
what real recordings take, and what FLAC's strongest level buys. Audio, each
16 kHz mono int16 as segment stores it:

- **real speech**: the real English clips of ``bench/label_quality.py`` (LibriSpeech,
  Common Voice, a podcast, the MFA developer's takes, praatio's and pocketsphinx's
  speakers; provenance and licences there), back to back;
- **espeak**: read sentences with the pauses between them;
- **noisy speech**: the real speech under white noise at 20 dB SNR (a noisy room);
- **noise**: white noise (incompressible: the floor of what lossless can do).

Each is encoded by libsndfile (what ``segment`` writes through ``soundfile``) at its
default level (5) and at level 8 (``compression_level=1.0``); printed: MB per audio
hour, ratio to 16-bit PCM (the baseline, 115.2 MB/h, in the same run) and encode
CPU seconds per audio hour, plus the decode time of a window at each level.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.append(str(REPO / "bench"))

import numpy as np  # noqa: E402
import soundfile  # noqa: E402

from label_workspace import SENTENCES, decode_file, espeak, silence  # noqa: E402
from whcore.records import SAMPLE_RATE  # noqa: E402
from whcore.model_cache import cache_dir  # noqa: E402

SECONDS_PER_HOUR = 3600
LEVELS = {"default (5)": None, "8 (strongest)": 1.0}
NOISY_SNR_DB = 20.0
MB = 1e6


def as_int16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")


def encode(samples: np.ndarray, level: float | None) -> tuple[bytes, float]:
    """FLAC bytes of ``samples`` and the CPU seconds the encode took."""
    buffer = io.BytesIO()
    extra = {} if level is None else {"compression_level": level}
    started = time.process_time()
    soundfile.write(buffer, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16", **extra)
    return buffer.getvalue(), time.process_time() - started


def real_speech() -> np.ndarray:
    from label_quality import real_clips

    data = cache_dir() \
        / "bench-real-speech"
    return np.concatenate([decode_file(c.path) for c in real_clips(data)])


def with_noise(audio: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    rms = float(np.sqrt(np.mean(audio ** 2)))
    noise = np.random.default_rng(seed).standard_normal(len(audio)).astype(np.float32)
    return audio + noise * rms / 10 ** (snr_db / 20)


def main() -> int:
    speech = real_speech()
    kinds = {
        "real speech": speech,
        "espeak": np.concatenate([np.concatenate([espeak(s), silence(0.4)]) for s in SENTENCES]),
        f"noisy speech ({NOISY_SNR_DB:g} dB)": with_noise(speech, NOISY_SNR_DB),
        "white noise": np.random.default_rng(1).standard_normal(SAMPLE_RATE * 120).astype(np.float32) * 0.1,
    }
    pcm_mb_per_h = SAMPLE_RATE * 2 * SECONDS_PER_HOUR / MB
    print(f"baseline: 16-bit PCM = {pcm_mb_per_h:.1f} MB per audio hour (WAV windows with 2 s overlap: x1.25)")
    print(f"{'audio':<24}{'minutes':>8}" + "".join(f"{name + ' MB/h':>22}{'x PCM':>7}{'enc CPU s/h':>12}"
                                                    for name in LEVELS))
    for kind, audio in kinds.items():
        samples = as_int16(audio / max(1.0, float(np.abs(audio).max())))
        hours = len(samples) / SAMPLE_RATE / SECONDS_PER_HOUR
        row = f"{kind:<24}{hours * 60:>8.1f}"
        for level in LEVELS.values():
            data, cpu = encode(samples, level)
            restored, _ = soundfile.read(io.BytesIO(data), dtype="int16")
            assert np.array_equal(restored, samples), "FLAC must be lossless"
            row += f"{len(data) / MB / hours:>22.1f}{len(data) / MB / hours / pcm_mb_per_h:>7.2f}{cpu / hours:>12.1f}"
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
