"""Parquet shards as finetune reads them: metadata only up front, audio row by row, bad shards named.

The workspace is built by the real harvest and segment (FLAC store); the label
records are generated (text "window N"), so no model runs: label's own tests
build the shards from real labels. Shards hold one source each here
(``SHARD_TARGET_BYTES`` lowered), so a corrupt one can be left out while the
others load.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

import label.shards as shards
from finetune.audio import load_audio
from finetune.data import load_dataset_input
from label_workspace import build_workspace_from_files, decode_file, white_noise
from whcore.atomic import read_jsonl
from whcore.records import LabelRecord, WindowRecord
from whcore.window_audio import read_window
from whcore.workspace import Workspace

SOURCES = ("lecture", "second", "third", "fourth")  # only "second" hashes into test at 0.1


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def error(self, message: str) -> None:
        self.lines.append(message)


def generated_labels(root: Path) -> list[LabelRecord]:
    records = []
    for source_id in SOURCES:
        for row in read_jsonl(root / "windows" / source_id / "windows.jsonl"):
            window = WindowRecord.from_dict(row)
            records.append(LabelRecord(source_id=source_id, index=window.index, start=window.start, end=window.end,
                                       path=window.path, offset=window.offset, text=f"window {window.index}",
                                       language="en", mean_word_prob=0.9, speech_ratio=window.speech_ratio))
    return records


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory, example_audio: Path) -> tuple[Path, Path, list[LabelRecord]]:
    base = tmp_path_factory.mktemp("shards")
    inputs = base / "inputs"
    inputs.mkdir()
    speech = decode_file(example_audio)
    for seed, source_id in enumerate(SOURCES):  # distinct audio: harvest takes identical files once
        soundfile.write(str(inputs / f"{source_id}.wav"), speech + white_noise(len(speech) / 16000, 0.01, seed),
                        16000, subtype="PCM_16")
    root = build_workspace_from_files(base / "ws", [inputs / f"{s}.wav" for s in SOURCES], overlap=2.0)
    records = generated_labels(root)
    dataset = base / "dataset"
    dataset.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shards, "SHARD_TARGET_BYTES", 1)  # one source per shard
        build = shards.write_shards(Workspace(root), dataset, records, 0.1, base / "no-previous", Log())
    (dataset / shards.MANIFEST_NAME).write_text(shards.manifest_text(build.shards))
    (dataset / "README.md").write_text("\n".join(["---", *shards.card_configs(build.shards), "---", ""]))
    return root, dataset, records


def test_finetune_reads_rows_and_durations_from_the_shards(sharded) -> None:
    root, dataset, records = sharded
    data = load_dataset_input(dataset)
    assert not data.problems and data.language == "en"
    examples = [e for split in data.splits.values() for e in split]
    assert len(examples) == len(records)
    by_key = {(r.source_id, r.start): r for r in records}
    for example in examples[::7]:
        record = by_key[(example.source_id, example.start)]
        assert example.duration == pytest.approx(record.end - record.start)
        assert example.text == record.text
        samples = load_audio(example.audio_path, example.row)
        expected = read_window(Workspace(root), record, dtype="int16")
        assert np.array_equal(np.round(samples * 32768).astype(np.int16), expected)
    assert all(data.splits[s].text is None for s in data.splits)  # texts stay in the shards until read
    digest = hashlib.sha256()  # the digest as earlier versions took it over the rows (finetune resumes compare it)
    for split, rows in data.splits.items():
        for e in rows:
            digest.update(f"{split}|{e.audio_path.name}#{e.row[0]}.{e.row[1]}|{e.text}|{e.source_id}|{e.start}|"
                          f"{e.end}\n".encode())
    assert data.digest == digest.hexdigest()[:16]


def test_a_corrupt_shard_is_named_and_the_rest_loads(sharded, tmp_path: Path) -> None:
    import shutil

    _, dataset, _ = sharded
    copy = tmp_path / "dataset"
    shutil.copytree(dataset, copy)
    manifest = json.loads((copy / shards.MANIFEST_NAME).read_text())["shards"]
    train = [s for s in manifest if s["split"] == "train"]
    broken = copy / train[0]["file"]
    broken.write_bytes(broken.read_bytes()[:5000])  # truncated: no footer
    data = load_dataset_input(copy)
    assert len(data.problems) == 1 and broken.name in data.problems[0] and "left out" in data.problems[0]
    loaded = {e.source_id for split in data.splits.values() for e in split}
    assert loaded == set(SOURCES) - set(train[0]["sources"])


def test_the_loader_keeps_two_shards_open_and_reads_with_a_pool_that_returns_memory(sharded, monkeypatch) -> None:
    import pyarrow as pa

    import finetune.audio as audio

    _, dataset, _ = sharded
    previous = pa.default_memory_pool()
    try:
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")  # the user's choice is kept
        audio.use_returning_pool()
        assert pa.default_memory_pool().backend_name == previous.backend_name
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
        data = load_dataset_input(dataset)
        try:
            expected = pa.jemalloc_memory_pool().backend_name
        except NotImplementedError:  # wheels built without jemalloc (macOS, Windows) keep their default
            expected = previous.backend_name
        assert pa.default_memory_pool().backend_name == expected
        examples = [e for split in data.splits.values() for e in split]
        assert len({e.audio_path for e in examples}) == len(SOURCES) > audio.OPEN_SHARDS
        for example in examples:
            assert len(load_audio(example.audio_path, example.row)) == round(example.duration * 16000)
            assert list(audio._OPEN_SHARDS.files)[-1] == example.audio_path
            assert len(audio._OPEN_SHARDS.files) <= audio.OPEN_SHARDS
        last = examples[-1].audio_path
        assert audio._open_shard(last) is audio._open_shard(last)  # an open shard is not parsed again
    finally:
        pa.set_memory_pool(previous)
