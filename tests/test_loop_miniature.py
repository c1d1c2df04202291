"""The loop in miniature: fine-tuning on clean pseudo-labels must still improve a held-out source.

``bench/loop.py`` measures the whole loop; this is the smallest run of it that
still shows the gain, cheap enough for every ``make test``. One channel:
espeak-ng reads ``bench/loop.py``'s domain sentences (talks on the history of
cities, with a recurring set of place names) in two fast voices, where the
student tiny.en is far worse than the seed whisper-base (held-out CER about
0.45 against labels of CER about 0.2), so the seed's labels have something
to teach. One training episode goes through the real stages (``harvest`` of
a local file, ``segment --overlap 0`` with one sentence per window,
``label --model offline-base``); tiny.en is fine-tuned by ``python -m
finetune`` on the dataset label wrote, and the starting and the fine-tuned
tiny.en are scored the way ``bench/loop.py`` scores every model (their
CTranslate2 copies through faster-whisper, greedy) on a held-out episode
that was never harvested, whose sentences never occur in training.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import loop  # noqa: E402
from label_workspace import espeak, fit, silence  # noqa: E402
from whcore.records import SAMPLE_RATE  # noqa: E402

WINDOW_S = 6.0  # one sentence per window, five windows per 30 s training input
MAX_SPEECH_S = 5.4  # longer readings are skipped, so no window cuts a sentence
PAUSE_S = 0.3  # after each sentence, before the window is centred
# Fast voices: there tiny.en writes about twice the seed's character errors.
VOICES = (("en-gb-x-rp", 250), ("en-us", 260))  # (espeak-ng voice, words per minute)
TRAIN_WINDOWS = 48
HELD_OUT_WINDOWS = 12
# One test window for finetune's own before/after evaluation: each of its evaluations
# (transformers generate on CPU) then decodes one short input.
TEST_FRACTION = 0.01
SEED = 1  # sentences, their order, and finetune's data order and initialisation
SETTINGS = loop.TrainSettings(steps=6, learning_rate=1e-4, effective_batch=4, seed=SEED)
MIN_KEPT = TRAIN_WINDOWS // 2
# On the capped mean CER (each window counted at most 1, so one runaway decode of a 12-window set
# cannot decide the test): measured -51 % (seed 1) and -54 % (seed 2); half of that fails.
MIN_RELATIVE_DROP = 0.25


@dataclass(frozen=True)
class Window:
    audio: np.ndarray  # WINDOW_S of 16 kHz mono float32
    text: str  # what is said in it


def read_windows(count: int, texts: list[str], first_voice: int) -> list[Window]:
    """``count`` windows, each one sentence read by the two voices in turn; sentences whose
    reading is longer than MAX_SPEECH_S are skipped (and consumed from ``texts``)."""
    windows: list[Window] = []
    while len(windows) < count:
        text = texts.pop(0)
        voice, words_per_minute = VOICES[(first_voice + len(windows)) % len(VOICES)]
        speech = espeak(text, voice, words_per_minute)
        if len(speech) / SAMPLE_RATE <= MAX_SPEECH_S:
            windows.append(Window(fit(np.concatenate([speech, silence(PAUSE_S)]), WINDOW_S), text))
    return windows


def cpu_seconds() -> float:
    """CPU time of this process and of the stage processes it has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.mark.slow
def test_finetuning_on_kept_labels_improves_a_held_out_source(tmp_path: Path) -> None:
    started, cpu_started = time.monotonic(), cpu_seconds()
    texts = loop.sentences(2 * (TRAIN_WINDOWS + HELD_OUT_WINDOWS), random.Random(SEED))
    train = read_windows(TRAIN_WINDOWS, texts, first_voice=0)
    held_out = read_windows(HELD_OUT_WINDOWS, texts, first_voice=1)
    episode = tmp_path / "cities_ep01.wav"
    soundfile.write(episode, np.concatenate([w.audio for w in train]), SAMPLE_RATE, subtype="PCM_16")
    items = []
    for k, window in enumerate(held_out):
        path = tmp_path / "held_out" / f"cities_ep02_{k:03d}.wav"
        path.parent.mkdir(exist_ok=True)
        soundfile.write(path, window.audio, SAMPLE_RATE, subtype="PCM_16")
        items.append(loop.Item(path, window.text))

    workspace, log = tmp_path / "corpus", tmp_path / "stages.log"
    loop.run_stage(["harvest", str(episode), "--workspace", str(workspace)], log)
    loop.run_stage(["segment", "--workspace", str(workspace), "--window", str(WINDOW_S), "--overlap", "0"], log)
    records = loop.label(workspace, loop.TEACHER, log, "--test-fraction", str(TEST_FRACTION))
    kept = [r for r in records if not r.flags and r.text.strip()]
    label_cer = loop.rate([loop.counts(train[r.index].text, r.text) for r in kept], "char_edits", "chars")
    assert len(kept) >= MIN_KEPT, f"label kept {len(kept)} of {len(records)} windows"

    student = loop.tiny_en_dir()
    before = loop.score(student, items, SEED)
    model = tmp_path / "tiny.en-finetuned"
    finetuned, _ = loop.train(str(student), workspace / "dataset", model, SETTINGS, log)
    after = loop.score(finetuned, items, SEED)

    results = json.loads((model / "results.json").read_text(encoding="utf-8"))
    print(f"\nlabel kept {len(kept)} of {len(records)} windows (CER {label_cer:.3f} against the truth); "
          f"tiny.en on {len(items)} held-out windows, before -> after {results['steps']} steps: CER "
          f"{before.cer:.3f} -> {after.cer:.3f}, capped mean CER {before.capped:.3f} -> {after.capped:.3f} "
          f"({(after.capped - before.capped) / before.capped:+.0%}; goal <= {-MIN_RELATIVE_DROP:.0%}); "
          f"{time.monotonic() - started:.0f} s wall, {cpu_seconds() - cpu_started:.0f} s CPU")
    assert results["steps"] == SETTINGS.steps
    assert (finetuned / "model.bin").is_file() and (model / "config.json").is_file()
    assert after.capped <= before.capped * (1 - MIN_RELATIVE_DROP), list(zip(before.texts, after.texts))
