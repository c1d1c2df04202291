"""Real ffmpeg decoding of many rates, layouts, codecs and containers into exact windows.

One workspace holds a tone-steps signal (second k is a tone at ``tone_hz(k)``)
in every format; ``python -m segment`` cuts them all in one run. Each window,
cut from the source's 16 kHz mono s16 FLAC as every stage reads it, must be
exactly ``window`` samples long (the tail excepted), start exactly ``hop``
samples after the previous one, hold exactly
the samples of a full decode at its position, and carry the tones of the
source seconds it claims to cover, so a misplaced cut or a drifting decode shows.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from segment.decode import pcm_chunks
from segment.windows import make_plan, plan_windows
from whcore.records import WindowRecord
from whcore.window_audio import read_windows
from whcore.workspace import Workspace

SIGNALS_PATH = Path(__file__).parent / "fixtures" / "segment" / "signals.py"
_spec = importlib.util.spec_from_file_location("segment_test_signals", SIGNALS_PATH)
signals = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(signals)

RATE = 16000
SECONDS = 21.5  # two full windows and a 3.5 s tail with the defaults
PLAN = make_plan(10, 2, 1)
TRANSITION_SEARCH_S = 0.04  # a tone change is looked for within +-40 ms of where it should be
ENVELOPE_SAMPLES = 160  # 10 ms smoothing of each tone's demodulated amplitude
TRANSITION_TOLERANCE_S = 0.001  # measured: every codec here is within 0.2 ms

# source id -> (file name, input rate, channels, with a black video stream)
MEDIA = {
    "aac_44k_stereo": ("aac_44k_stereo.m4a", 44100, 2, False),
    "opus_48k_stereo": ("opus_48k_stereo.opus", 48000, 2, False),
    "mp3_22k_mono": ("mp3_22k_mono.mp3", 22050, 1, False),
    "flac_8k_5_1": ("flac_8k_5_1.flac", 8000, 6, False),
    "wav_48k_5_1": ("wav_48k_5_1.wav", 48000, 6, False),
    "wav_8k_mono": ("wav_8k_mono.wav", 8000, 1, False),
    "vorbis_22k_stereo": ("vorbis_22k_stereo.ogg", 22050, 2, False),
    "video_mp4_aac": ("video_mp4_aac.mp4", 44100, 2, True),
    "video_mkv_opus": ("video_mkv_opus.mkv", 48000, 2, True),
}
# 16 kHz mono WAVs of exact sample counts around the tail boundary: decoding changes nothing.
EXACT = {"exact_one_window": PLAN.window + PLAN.min_tail - 1, "exact_with_tail": PLAN.window + PLAN.min_tail,
         "exact_three": PLAN.hop + PLAN.window + PLAN.min_tail}


@pytest.fixture(scope="module")
def cut_workspace(tmp_path_factory: pytest.TempPathFactory, python: str) -> Path:
    workspace = tmp_path_factory.mktemp("segment_formats")
    audio = workspace / "sources" / "audio"
    audio.mkdir(parents=True)
    for source_id, (name, rate, channels, video) in MEDIA.items():
        media = signals.make_media(audio, name, SECONDS, rate, channels, video)
        signals.write_source_record(workspace, source_id, media)
    for source_id, samples in EXACT.items():
        path = signals.write_wav(audio / f"{source_id}.wav", signals.tone_steps(samples / RATE, RATE), RATE)
        signals.write_source_record(workspace, source_id, path)
    result = subprocess.run([python, "-m", "segment", "--workspace", str(workspace)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return workspace


def load_windows(workspace: Path, source_id: str) -> list[tuple[dict, np.ndarray]]:
    """Each window's row and samples, cut from the source's FLAC as every stage reads them."""
    manifest = workspace / "windows" / source_id / "windows.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    store = workspace / "windows" / source_id / "audio.flac"
    with soundfile.SoundFile(str(store)) as handle:
        assert (handle.channels, handle.samplerate, handle.subtype) == (1, RATE, "PCM_16")
    windows = [WindowRecord.from_dict(row) for row in rows]
    return list(zip(rows, read_windows(Workspace(workspace), windows, dtype="int16")))


def tone_change_offset(samples: np.ndarray, at_s: float, before_hz: float, after_hz: float) -> float:
    """Seconds from ``at_s`` to where the tone really changes from ``before_hz`` to ``after_hz``.

    Each tone's amplitude is demodulated (multiply by its complex carrier,
    10 ms moving average); the change is where the second overtakes the first.
    """
    centre = round(at_s * RATE)
    low, high = centre - round(TRANSITION_SEARCH_S * RATE), centre + round(TRANSITION_SEARCH_S * RATE)
    values, positions = samples[low:high].astype(np.float64), np.arange(low, high)
    kernel = np.ones(ENVELOPE_SAMPLES) / ENVELOPE_SAMPLES
    before, after = (np.abs(np.convolve(values * np.exp(-2j * np.pi * hz * positions / RATE), kernel, "valid"))
                     for hz in (before_hz, after_hz))
    first_after = int(np.flatnonzero(after > before)[0])
    return (first_after + ENVELOPE_SAMPLES // 2 + low - centre) / RATE


def assert_tones_match_time(samples: np.ndarray, start_s: float) -> None:
    """Every whole second inside the window plays its tone, and tones change within 1 ms of each second."""
    end_s = start_s + len(samples) / RATE
    for second in range(int(np.ceil(start_s)), int(np.floor(end_s))):
        middle = samples[round((second - start_s + 0.1) * RATE):round((second - start_s + 0.9) * RATE)]
        assert signals.dominant_hz(middle, RATE) == pytest.approx(signals.tone_hz(second), abs=3)
    for boundary in range(int(np.floor(start_s)) + 1, int(np.ceil(end_s))):
        at = boundary - start_s
        if TRANSITION_SEARCH_S < at < end_s - start_s - TRANSITION_SEARCH_S:
            offset = tone_change_offset(samples, at, signals.tone_hz(boundary - 1), signals.tone_hz(boundary))
            assert abs(offset) <= TRANSITION_TOLERANCE_S, f"tone changes {offset * 1000:.2f} ms off second {boundary}"


@pytest.mark.parametrize("source_id", [*MEDIA, *EXACT])
def test_windows_are_sample_exact(cut_workspace: Path, source_id: str) -> None:
    media = cut_workspace / json.loads((cut_workspace / "sources" / f"{source_id}.json").read_text())["audio_path"]
    reference = np.concatenate(list(pcm_chunks(media)))
    if source_id in EXACT:
        assert len(reference) == EXACT[source_id]
    else:
        assert abs(len(reference) / RATE - SECONDS) < 0.01
    windows = load_windows(cut_workspace, source_id)
    expected = plan_windows(len(reference), PLAN)
    assert [(round(r["start"] * RATE), round(r["end"] * RATE)) for r, _ in windows] == expected
    for index, (row, samples) in enumerate(windows):
        start, end = expected[index]
        assert row["index"] == index and row["source_id"] == source_id
        assert row["path"] == f"windows/{source_id}/audio.flac" and row["offset"] == start
        assert len(samples) == end - start
        if index < len(windows) - 1:
            assert len(samples) == PLAN.window
        assert np.array_equal(samples, reference[start:end])
        assert -30 < row["rms_db"] < -5 and 0 <= row["speech_ratio"] <= 1


@pytest.mark.parametrize("source_id", [*MEDIA])
def test_window_content_encodes_its_time(cut_workspace: Path, source_id: str) -> None:
    for row, samples in load_windows(cut_workspace, source_id):
        assert_tones_match_time(samples, row["start"])


def test_tail_rule_on_exact_lengths(cut_workspace: Path) -> None:
    counts = {source_id: len(load_windows(cut_workspace, source_id)) for source_id in EXACT}
    assert counts == {"exact_one_window": 1, "exact_with_tail": 2, "exact_three": 3}
    tail_row, tail = load_windows(cut_workspace, "exact_with_tail")[-1]
    assert (tail_row["start"], tail_row["end"], len(tail)) == (8.0, 11.0, 3 * RATE)
