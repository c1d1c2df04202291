"""More candidate confidence signals for ``bench/label_quality.py --more-signals``.

The agreement of the seed's label with a second model's greedy text is the best signal
label has (issue 11). This module measures whether anything else the two installable models
(whisper-base and tiny.en) can give separates good labels from bad any better, so "no
signal from these models reaches the goal" is a measurement in the repo, not a claim:

- **check model's likelihood of the label**: tiny.en forced through the label's own tokens
  (CTranslate2 ``align``), mean token log-probability: how plausible the other model finds
  the label for this audio, even where its own best guess spells it differently;
- **sampling self-consistency**: agreement of the label with N decodes sampled at a
  temperature, from the seed (its own doubt) and from the check model;
- **agreement with a beam-search decode** of either model (a steadier second opinion);
- **hypothesis selection**: instead of only filtering, label each clip with whichever of
  the two greedy texts both models together find more likely (sum of their mean token
  log-probabilities), then rank by agreement; it changes the labels, so its kept CER is
  reported against the seed's own mean CER.

Each is scored like ``label_quality.print_ranking``: the mean CER of the clips it ranks
highest, at the same kept count, next to the true-CER ranking (the best any signal could do).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import ctranslate2
import numpy as np
import soundfile

from label.backend_ct2 import Ct2Engine, EngineOptions
from label.quality import text_agreement
from whcore.records import LabelRecord

SAMPLES = 6  # decodes per clip for the sampling signals
SEED_TEMPERATURE = 0.5  # the seed's samples: enough spread to show doubt, not noise
CHECK_TEMPERATURE = 1.0  # the check model's samples
BEAM = 5  # beam width of the beam-search second opinions (faster-whisper's default)
BATCH = 4  # clips per encoder call
EMPTY_LOGPROB = -100.0  # mean log-probability given to an empty text (ranks it last)
SAMPLING_SEED = 1234  # CTranslate2's sampling seed: the same samples on every run


@dataclass
class ClipEvidence:
    """What the two models say about one clip, beyond the label itself."""

    label: str
    check_greedy: str = ""
    check_beam: str = ""
    seed_beam: str = ""
    seed_samples: tuple[str, ...] = ()
    check_samples: tuple[str, ...] = ()
    check_logp_of_label: float = EMPTY_LOGPROB  # tiny.en, forced through the label's tokens
    seed_logp_of_label: float = EMPTY_LOGPROB
    check_logp_of_check: float = EMPTY_LOGPROB
    seed_logp_of_check: float = EMPTY_LOGPROB


def forced_logprob(engine: Ct2Engine, encoded: ctranslate2.StorageView, texts: Sequence[str],
                   frames: Sequence[int]) -> list[float]:
    """Mean token log-probability of each text under ``engine`` for its audio (teacher forcing)."""
    tokenizer = engine.tokenizer("en")
    scores = []
    array = np.asarray(encoded)
    for row, (text, count) in enumerate(zip(texts, frames)):
        tokens = tokenizer.encode(" " + text.strip()) if text.strip() else []
        if not tokens:
            scores.append(EMPTY_LOGPROB)
            continue
        part = ctranslate2.StorageView.from_array(np.ascontiguousarray(array[row:row + 1]))
        probs = engine.model.align(part, tokenizer.sot_sequence, [tokens], [count])[0].text_token_probs
        scores.append(statistics.fmean(math.log(max(float(p), 1e-10)) for p in probs))
    return scores


def sampled_texts(engine: Ct2Engine, encoded: ctranslate2.StorageView, temperature: float) -> list[tuple[str, ...]]:
    """``SAMPLES`` texts per input, sampled from the full distribution at ``temperature``."""
    tokenizer = engine.tokenizer("en")
    prompt = engine.faster_whisper_model.get_prompt(tokenizer, previous_tokens=[], without_timestamps=True)
    results = engine.model.generate(encoded, [list(prompt)] * encoded.shape[0], beam_size=1,
                                    num_hypotheses=SAMPLES, sampling_topk=0, sampling_temperature=temperature,
                                    max_length=448, suppress_blank=True, suppress_tokens=[-1])
    return [tuple(tokenizer.decode([t for t in seq if t < tokenizer.eot]).strip() for seq in result.sequences_ids)
            for result in results]


def gather(root: Path, records: Sequence[LabelRecord], seed: EngineOptions, check_dir: Path) -> list[ClipEvidence]:
    """Every clip's evidence from both models (one window per clip, at most 30 s)."""
    seed = replace(seed, cpu_threads=1)  # one worker: see the seeding below
    audios = [soundfile.read(root / r.path, dtype="float32")[0] for r in records]
    frames = [min(3000, len(a) // 160) for a in audios]
    engines = {"seed": Ct2Engine(seed), "check": Ct2Engine(replace(seed, model_dir=check_dir))}
    evidence = [ClipEvidence(label=r.text) for r in records]
    # Seeded and on one CTranslate2 worker, the samples are the same on every run: each worker
    # has its own random generator and which worker takes a batch varies, so two workers gave
    # different samples (the sampled signals moved by 0.03x between two runs).
    ctranslate2.set_random_seed(SAMPLING_SEED)
    english = [("en", 1.0)] * BATCH
    for start in range(0, len(records), BATCH):
        rows = range(start, min(start + BATCH, len(records)))
        batch, counts = [audios[i] for i in rows], [frames[i] for i in rows]
        encoded = {name: engine.encode(batch) for name, engine in engines.items()}
        check = engines["check"].decode(encoded["check"], "en", english[:len(rows)])
        check_beam = engines["check"].decode(encoded["check"], "en", english[:len(rows)], beam_size=BEAM)
        seed_beam = engines["seed"].decode(encoded["seed"], "en", english[:len(rows)], beam_size=BEAM)
        seed_samples = sampled_texts(engines["seed"], encoded["seed"], SEED_TEMPERATURE)
        check_samples = sampled_texts(engines["check"], encoded["check"], CHECK_TEMPERATURE)
        labels = [evidence[i].label for i in rows]
        checks = [c.text for c in check]
        scores = {
            "check_logp_of_label": forced_logprob(engines["check"], encoded["check"], labels, counts),
            "seed_logp_of_label": forced_logprob(engines["seed"], encoded["seed"], labels, counts),
            "check_logp_of_check": forced_logprob(engines["check"], encoded["check"], checks, counts),
            "seed_logp_of_check": forced_logprob(engines["seed"], encoded["seed"], checks, counts),
        }
        for k, i in enumerate(rows):
            e = evidence[i]
            e.check_greedy, e.check_beam, e.seed_beam = checks[k], check_beam[k].text, seed_beam[k].text
            e.seed_samples, e.check_samples = seed_samples[k], check_samples[k]
            for name, values in scores.items():
                setattr(e, name, values[k])
    return evidence


def top_mean(scores: Sequence[float], cers: Sequence[float], count: int) -> float:
    """Mean CER of the ``count`` clips with the highest ``scores`` (what keeping the clips a
    signal ranks highest would give)."""
    top = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[:count]
    return statistics.fmean(cers[i] for i in top)


def _agree(text: str, others: Sequence[str]) -> float:
    return statistics.fmean(text_agreement(text, other, "en") for other in others) if others else 0.0


SIGNALS: dict[str, Callable[[ClipEvidence], float]] = {
    "check model's likelihood of the label": lambda e: e.check_logp_of_label,
    "both models' likelihood of the label": lambda e: e.check_logp_of_label + e.seed_logp_of_label,
    "check likelihood, label vs its own text": lambda e: e.check_logp_of_label - e.check_logp_of_check,
    f"seed self-consistency ({SAMPLES} samples, T {SEED_TEMPERATURE})": lambda e: _agree(e.label, e.seed_samples),
    f"agreement with check samples ({SAMPLES}, T {CHECK_TEMPERATURE})": lambda e: _agree(e.label, e.check_samples),
    f"agreement with check model, beam {BEAM}": lambda e: _agree(e.label, [e.check_beam]),
    f"agreement with seed, beam {BEAM}": lambda e: _agree(e.label, [e.seed_beam]),
    "agreement, greedy + beam + samples of check": lambda e: _agree(e.label, [e.check_greedy, e.check_beam,
                                                                               *e.check_samples]),
}


def joint_choice(e: ClipEvidence) -> str:
    """The greedy text (seed's or check model's) both models together find more likely."""
    seed_side = e.seed_logp_of_label + e.check_logp_of_label
    check_side = e.seed_logp_of_check + e.check_logp_of_check
    return e.label if seed_side >= check_side else e.check_greedy


def print_study(root: Path, records: Sequence[LabelRecord], cer: Callable[[LabelRecord, str], float],
                count: int, seed: EngineOptions, check_dir: Path) -> None:
    """The kept CER at ``count`` clips for each signal; ``cer(record, text)`` scores a text."""
    evidence = gather(root, records, seed, check_dir)
    label_cers = [cer(r, r.text) for r in records]
    seed_cer = statistics.fmean(label_cers)
    print(f"\nmore signals from the two installable models (keeping the {count} clips each ranks highest; "
          f"seed mean CER {seed_cer:.3f}):")
    ranked = {**{name: [signal(e) for e in evidence] for name, signal in SIGNALS.items()},
              "agreement with check model, greedy (label's)": [_agree(e.label, [e.check_greedy]) for e in evidence],
              "true CER (best possible)": [-c for c in label_cers]}
    for name, values in ranked.items():
        kept = top_mean(values, label_cers, count)
        print(f"  {name:<46} kept CER {kept:.3f} ({kept / seed_cer:.2f}x)")
    chosen_cers = [cer(r, joint_choice(e)) for r, e in zip(records, evidence)]
    chosen_cer = statistics.fmean(chosen_cers)
    kept = top_mean(ranked["agreement with check model, greedy (label's)"], chosen_cers, count)
    print(f"  labels chosen by joint likelihood: mean CER {chosen_cer:.3f} over all clips "
          f"({chosen_cer / seed_cer:.2f}x); the {count} with the highest agreement {kept:.3f} ({kept / seed_cer:.2f}x)")
