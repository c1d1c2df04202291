"""The FLAC store: each source once, windows cut when read, equal to the WAV writer's windows.

The same sources are segmented twice, ``--format wav`` (one WAV per window, the
earlier layout) and the default FLAC store; every window read back through
``whcore.window_audio`` from the FLAC must equal the WAV writer's file, sample
for sample, with and without ``--snap``. A truncated or corrupt store is named
in one line when read.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import numpy as np
import pytest

from test_segment_cli import new_workspace
from whcore.atomic import read_jsonl
from whcore.errors import SourceError
from whcore.records import WindowRecord
from whcore.window_audio import SOURCE_AUDIO_NAME, WindowReader, read_windows
from whcore.workspace import Workspace

SIGNALS_PATH = Path(__file__).parent / "fixtures" / "segment" / "signals.py"
_spec = importlib.util.spec_from_file_location("segment_test_signals", SIGNALS_PATH)
signals = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(signals)

WAV_HEADER_BYTES = 44


def segmented(python: str, root: Path, media: dict[str, Path], *args: str) -> Path:
    new_workspace(root, media)
    subprocess.run([python, "-m", "segment", "--workspace", str(root), *args], check=True,
                   capture_output=True, text=True, timeout=300)
    return root


def windows_of(root: Path, source_id: str) -> list[WindowRecord]:
    return [WindowRecord.from_dict(r) for r in read_jsonl(root / "windows" / source_id / "windows.jsonl")]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, example_audio: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("store_media")
    return {"lecture": example_audio,
            "tones": signals.make_media(folder, "tones.m4a", 47.3, 44100, 2)}


@pytest.mark.parametrize("snap", [None, "0.5"])
def test_flac_windows_equal_the_wav_writers_windows(python: str, tmp_path: Path, media: dict[str, Path],
                                                    snap: str | None) -> None:
    extra = ("--snap", snap) if snap else ()
    wav = segmented(python, tmp_path / "wav", media, "--format", "wav", *extra)
    flac = segmented(python, tmp_path / "flac", media, *extra)
    for source_id in media:
        files = sorted(p.name for p in (flac / "windows" / source_id).iterdir())
        assert files == [".provenance.json", SOURCE_AUDIO_NAME, "windows.jsonl"]  # one audio file per source
        wav_windows, flac_windows = windows_of(wav, source_id), windows_of(flac, source_id)
        assert [(w.index, w.start, w.end, w.rms_db, w.speech_ratio) for w in flac_windows] == \
               [(w.index, w.start, w.end, w.rms_db, w.speech_ratio) for w in wav_windows]
        cut = list(read_windows(Workspace(flac), flac_windows, dtype="int16"))
        for window, samples in zip(wav_windows, cut):
            expected = np.frombuffer((wav / window.path).read_bytes()[WAV_HEADER_BYTES:], dtype="<i2")
            assert samples.dtype == np.int16 and np.array_equal(samples, expected), window.path
        # the WAV layout reads through the same function, and float32 is int16 / 32768
        as_wav = list(read_windows(Workspace(wav), wav_windows[:2]))
        assert np.array_equal(as_wav[0], cut[0].astype(np.float32) / 32768)
    store = flac / "windows" / "lecture" / SOURCE_AUDIO_NAME
    pcm_bytes = sum(2 * (round(w.end * 16000) - round(w.start * 16000)) for w in windows_of(flac, "lecture"))
    assert store.stat().st_size < 0.6 * pcm_bytes  # overlap stored once, and FLAC-compressed


def test_truncated_or_corrupt_store_is_named(python: str, tmp_path: Path, media: dict[str, Path]) -> None:
    root = segmented(python, tmp_path / "ws", {"lecture": media["lecture"]})
    windows = windows_of(root, "lecture")
    store = root / "windows" / "lecture" / SOURCE_AUDIO_NAME
    data = store.read_bytes()
    store.write_bytes(data[:len(data) // 2])
    with WindowReader(Workspace(root)) as reader:
        assert len(reader.read(windows[0])) == round(windows[0].end * 16000)  # the first half still reads
        with pytest.raises(SourceError, match="audio.flac.*(truncated|damaged)"):
            reader.read(windows[-1])
    store.write_bytes(b"not a flac file at all" * 100)
    with pytest.raises(SourceError, match="audio.flac cannot be read"):
        list(read_windows(Workspace(root), windows[:1]))
