"""Real non-speech and speech recordings that install offline, for label's music and noise benches.

Everything comes from Debian packages (``apt-get download`` + ``dpkg-deb -x``, nothing is
installed) and is decoded to 16 kHz mono with ffmpeg:

=============================  ============================================  ==================
package                        what                                          licence
=============================  ============================================  ==================
asc-music 1.3                  3 orchestral/electronic game tracks, 17.6 min  GPL-2+
fb-music-high 0.1.2            Frozen Bubble's tracker module, 3.4 min        GPL-2+
asterisk-moh-opsound-wav 2.03  5 Opsound music-on-hold tracks (8 kHz), 18.5 min  CC BY-SA 3.0
sonic-pi-samples 3.2.2         drum loops, a choir, ambient pads, vinyl hiss   CC BY-SA 4.0 / CC0 / MIT
asterisk-core-sounds-en-wav    364 recorded English telephone prompts          CC BY-SA 3.0
1.6.1                          (one speaker, 8 kHz; short phrases)
=============================  ============================================  ==================
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from label_workspace import decode_file
from whcore.records import SAMPLE_RATE

DEBIAN_PACKAGES = ("asc-music", "fb-music-high", "asterisk-moh-opsound-wav", "sonic-pi-samples",
                   "asterisk-core-sounds-en-wav")
MUSIC_GLOBS = ("usr/share/games/asc/music/*.mp3", "usr/share/games/frozen-bubble/snd/*.xm",
               "usr/share/asterisk/moh/*.wav")
LOOP_GLOBS = ("usr/share/sonic-pi/samples/loop_*.flac", "usr/share/sonic-pi/samples/ambi_choir.flac",
              "usr/share/sonic-pi/samples/ambi_piano.flac")
HISS = "usr/share/sonic-pi/samples/vinyl_hiss.flac"
CLAPS = ("usr/share/sonic-pi/samples/perc_snap.flac", "usr/share/sonic-pi/samples/perc_snap2.flac",
         "usr/share/sonic-pi/samples/drum_snare_soft.flac")
PROMPTS = "usr/share/asterisk/sounds/en_US_f_Allison"


def debian_root(data: Path) -> Path:
    """The packages' files, downloaded and unpacked once under ``data``."""
    root = data / "debian"
    marker = root / ".unpacked"
    if marker.is_file():
        return root
    debs = data / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [name for name in DEBIAN_PACKAGES if not list(debs.glob(f"{name}_*.deb"))]
    if missing:
        subprocess.run(["apt-get", "download", "-qq", *missing], cwd=debs, check=True, capture_output=True)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    marker.write_text("ok\n", encoding="utf-8")
    return root


def music_tracks(root: Path) -> dict[str, np.ndarray]:
    """Every whole music track (instrumental), by file stem."""
    return {path.stem: decode_file(path) for pattern in MUSIC_GLOBS for path in sorted(root.glob(pattern))}


def loops(root: Path, seconds: float) -> dict[str, np.ndarray]:
    """Short loops (drums, a choir, a piano phrase) repeated to ``seconds``."""
    found = {}
    for pattern in LOOP_GLOBS:
        for path in sorted(root.glob(pattern)):
            audio = decode_file(path)
            if len(audio):
                found[path.stem] = tile(audio, seconds)
    return found


def tile(audio: np.ndarray, seconds: float) -> np.ndarray:
    count = int(seconds * SAMPLE_RATE)
    return np.tile(audio, count // len(audio) + 1)[:count].astype(np.float32)


def hiss(root: Path, seconds: float) -> np.ndarray:
    """Real vinyl surface noise, repeated."""
    return tile(decode_file(root / HISS), seconds)


def applause(root: Path, seconds: float, claps_per_second: float = 40.0, seed: int = 0) -> np.ndarray:
    """Applause-like sound: real recorded snaps and a soft snare at random times and levels (a
    crowd clapping out of step), with a slow swell."""
    rng = np.random.default_rng(seed)
    samples = [decode_file(root / name) for name in CLAPS]
    out = np.zeros(int(seconds * SAMPLE_RATE) + SAMPLE_RATE, dtype=np.float32)
    for _ in range(int(seconds * claps_per_second)):
        clap = samples[rng.integers(len(samples))][: SAMPLE_RATE // 5]
        at = int(rng.integers(0, len(out) - len(clap)))
        out[at:at + len(clap)] += clap * rng.uniform(0.05, 0.3)
    out = out[: int(seconds * SAMPLE_RATE)]
    swell = 0.6 + 0.4 * np.sin(np.linspace(0, np.pi, len(out)))
    return (out * swell / max(1e-6, float(np.abs(out).max())) * 0.5).astype(np.float32)


def prompts(root: Path) -> dict[str, np.ndarray]:
    """The recorded telephone prompts, by name (names say what is spoken, e.g. ``all-circuits-busy-now``);
    read with soundfile and resampled 8 -> 16 kHz in-process (an ffmpeg per file is slow)."""
    import soundfile
    from scipy.signal import resample_poly

    found = {}
    for path in sorted((root / PROMPTS).glob("*.wav")):
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        found[path.stem] = resample_poly(audio.mean(axis=1), SAMPLE_RATE, rate).astype(np.float32)
    return found


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0


def mix(speech: np.ndarray, music: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech`` over ``music`` (cut or repeated to its length) at ``snr_db`` speech-to-music, by RMS
    over the speech's active part (samples above -40 dB of its peak), so pauses don't lower it."""
    bed = tile(music, len(speech) / SAMPLE_RATE)[: len(speech)]
    active = speech[np.abs(speech) > np.abs(speech).max() * 0.01] if len(speech) else speech
    gain = rms(active) / max(rms(bed), 1e-9) / (10 ** (snr_db / 20))
    out = speech + bed * gain
    peak = float(np.abs(out).max()) if len(out) else 1.0
    return (out / peak * 0.9 if peak > 0.99 else out).astype(np.float32)
