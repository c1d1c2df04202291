"""Quality filters: each a small function that says why a window is rejected.

Thresholds are the field's usual ones: compression ratio 2.4 and average
log-probability -1.0 (openai/whisper's fallback rules), Whisper's silence rule
(no-speech probability above 0.6 *and* average log-probability below -1: the
probability alone is high on many chunks of clear speech), unique-word share
0.4, and a speaking rate outside the source's own Tukey fences (Q1 - 1.5 IQR,
Q3 + 1.5 IQR: a window far slower or faster than the same speaker elsewhere is
misheard or hallucinated). The confidence filter's threshold on the mean word
probability was chosen by measurement on real recordings
(``bench/label_quality.py``). Each filter returns its flag name or None.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from whcore.records import LabelRecord
from whcore.text import is_unspaced

# Mean word probability below which a label is rejected as unsure. bench/label_quality.py
# picks it: the highest threshold on a 0.05 grid that keeps more than 75 % of real recorded
# clips and >= 90 % of clean synthetic speech. On its 80 clips 0.5 keeps 82.5 % at 0.79x the
# seed's CER; 0.55 keeps exactly 75.0 % (and 72.1 % of the earlier 68-clip set).
MIN_MEAN_WORD_PROB = 0.5

# Agreement (1 - CER) with --check-model's text below which a label is rejected. Picked by
# bench/label_quality.py with the rule of MIN_MEAN_WORD_PROB (tiny.en checking whisper-base,
# the default bfloat16 encoder): on its 80 clips 0.7 keeps 77.5 % of the real clips at 0.72x
# the seed's CER and all synthetic speech; 0.75 keeps exactly 75.0 % (73.5 % of the earlier
# 68-clip set), 0.8 keeps 65 % and 94 % of synthetic speech.
MIN_AGREEMENT = 0.7

# Known hallucinations of Whisper on silence, music and noise, one data file per language
# (label/data/hallucinations/<language>.txt, "any" for all languages, whole.txt for texts
# rejected only as a window's entire text). Entries are normalised as ``normalise`` does.
HALLUCINATIONS_DIR = Path(__file__).parent / "data" / "hallucinations"
ANY_LANGUAGE = "any"
WHOLE_TEXTS_FILE = "whole.txt"


def read_phrase_file(path: Path) -> tuple[str, ...]:
    """The entries of one phrase file: its lines without '#' comments and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return tuple(line for line in lines if line)


@lru_cache(maxsize=None)
def blocked_phrases(language: str) -> tuple[str, ...]:
    """The phrases blocked anywhere in a ``language`` window's text (any language's and its own)."""
    own = HALLUCINATIONS_DIR / f"{language.split('-')[0].lower()}.txt" if language else None
    return read_phrase_file(HALLUCINATIONS_DIR / f"{ANY_LANGUAGE}.txt") + \
        (read_phrase_file(own) if own is not None and own.is_file() else ())


@lru_cache(maxsize=1)
def blocked_whole_texts() -> frozenset[str]:
    """Texts rejected only when they are a window's entire text ("thank you" alone)."""
    return frozenset(read_phrase_file(HALLUCINATIONS_DIR / WHOLE_TEXTS_FILE))


KEEP_FRACTION_FLAG = "below_keep_fraction"  # set at dataset build time by --keep-fraction
FILTER_NAMES = ("empty", "no_speech", "music", "low_snr", "compression_ratio", "low_logprob", "low_confidence", "disagreement",
                "repetition", "low_unique_words", "long_word", "blocklist", "language", "speaking_rate",
                "subtitle_cer")


# Seconds of speech-like frames (Silero probability >= 0.15) a window must hold, else it holds
# no speech: 96 % of 109 windows of real music, loops, claps, hiss and noise hold fewer
# (bench/label_hallucinations.py's audio), every real clip of bench/label_quality.py but one
# whispered take holds more (falsetto 0.77 s, which at Silero's own 0.5 shows only 0.1 s), and
# so do short recorded prompts alone in a quiet 10 s window (bench/label_music.py).
MIN_VAD_VOICE_SECONDS = 0.5
# label.music.tonality at or above which a window without speech is music rather than noise:
# real music 0.86-0.98, speech 0.78-0.82, noise and claps 0.47-0.75 (5th-95th percentiles).
MIN_MUSIC_TONALITY = 0.8
# label.snr.wada_snr (dB) below which a window is rejected as too noisy. Off by default (-20 dB
# is the estimator's floor) because bench/label_snr.py measured no pay-off: on 40 real clips in
# five conditions (clean; white noise 10 and 3 dB; pink and a real music bed at 3 dB) the other
# filters keep 67.5 % at mean kept CER 0.237; --min-snr 3 keeps 53 % at 0.247 (worse), 8 keeps
# 31 % at 0.196 and costs clean speech 2.5 points. Within one noise level the estimate does not
# rank labels (kept CER rises as the threshold rises). A stricter corpus: --min-snr 8.
MIN_SNR_DB = -20.0


@dataclass(frozen=True)
class FilterThresholds:
    """Limits of every filter; a window breaking any one is rejected."""

    min_speech_ratio: float = 0.1  # VAD share of speech frames below this = no speech
    min_vad_voice_seconds: float = MIN_VAD_VOICE_SECONDS  # Silero's speech-like seconds below this = no speech (or music)
    min_music_tonality: float = MIN_MUSIC_TONALITY  # ... and called music when the sound is at least this tonal
    min_snr_db: float = MIN_SNR_DB  # estimated speech-to-noise ratio below this = too noisy
    max_no_speech_prob: float = 0.6  # Whisper's silence probability above this ...
    no_speech_max_logprob: float = -1.0  # ... with the window's mean token log-probability below this
    max_compression_ratio: float = 2.4  # gzip ratio of the text above this = repetitive loop
    min_avg_logprob: float = -1.0  # mean token log-probability below this = unsure
    min_word_prob: float = MIN_MEAN_WORD_PROB  # mean word probability below this = unsure
    max_ngram_repeats: int = 3  # an n-gram occurring more often than this = looping
    ngram_words: int = 3  # n of the word n-grams (characters x 2 for unspaced languages)
    min_unique_word_share: float = 0.4  # unique words / words at or below this = looping
    min_words_for_share: int = 8  # the share is judged on texts of at least this many words
    max_word_chars: int = 40  # a "word" longer than this is garbage
    rate_iqr_factor: float = 1.5  # Tukey fence width for the speaking-rate filter
    min_windows_for_rate: int = 8  # the rate filter needs this many windows in a source
    max_cer: float = 0.2  # CER against creator subtitles above this = wrong label
    min_agreement: float = MIN_AGREEMENT  # agreement with --check-model's text below this = unsure
    disabled: frozenset[str] = field(default_factory=frozenset)  # filter names switched off


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, single spaces (for matching and metrics only)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(c)[0] in "PSZC" else c for c in text)
    return " ".join(text.split())


def words_of(text: str, language: str) -> list[str]:
    """Word tokens, or characters for languages written without spaces."""
    cleaned = normalise(text)
    if is_unspaced(language):
        return [c for c in cleaned if not c.isspace()]
    return cleaned.split()


def check_empty(record: LabelRecord, th: FilterThresholds) -> str | None:
    return "empty" if not normalise(record.text) else None


def check_no_speech(record: LabelRecord, th: FilterThresholds) -> str | None:
    """The VADs hear no speech (and it is not music, which ``check_music`` names), or Whisper's
    rule: likely silence *and* unsure words."""
    if record.speech_ratio < th.min_speech_ratio:
        return "no_speech"
    if silero_heard_none(record, th) and not is_music(record, th):
        return "no_speech"
    if record.no_speech_prob > th.max_no_speech_prob and record.avg_logprob < th.no_speech_max_logprob:
        return "no_speech"
    return None


def silero_heard_none(record: LabelRecord, th: FilterThresholds) -> bool:
    """Silero VAD ran on the window and heard less than ``min_vad_voice_seconds`` of speech-like sound."""
    return record.vad_voice_seconds is not None and record.vad_voice_seconds < th.min_vad_voice_seconds


def is_music(record: LabelRecord, th: FilterThresholds) -> bool:
    """webrtcvad hears sound, Silero no speech, and the sound is tonal (label/music.py)."""
    return (record.speech_ratio >= th.min_speech_ratio and silero_heard_none(record, th)
            and record.tonality is not None and record.tonality >= th.min_music_tonality)


def check_music(record: LabelRecord, th: FilterThresholds) -> str | None:
    return "music" if is_music(record, th) else None


def check_snr(record: LabelRecord, th: FilterThresholds) -> str | None:
    """The speech is buried in noise (label.snr): labels of such windows are often wrong even when
    the seed is sure of them."""
    return "low_snr" if record.snr_db is not None and record.snr_db < th.min_snr_db else None


def check_compression(record: LabelRecord, th: FilterThresholds) -> str | None:
    return "compression_ratio" if record.compression_ratio > th.max_compression_ratio else None


def check_logprob(record: LabelRecord, th: FilterThresholds) -> str | None:
    return "low_logprob" if record.avg_logprob < th.min_avg_logprob else None


def check_confidence(record: LabelRecord, th: FilterThresholds) -> str | None:
    if record.mean_word_prob is not None and record.mean_word_prob < th.min_word_prob:
        return "low_confidence"
    return None


def max_ngram_count(tokens: Sequence[str], n: int) -> int:
    """How often the most frequent n-gram occurs (0 when there is none)."""
    counts: dict[tuple[str, ...], int] = {}
    for i in range(len(tokens) - n + 1):
        gram = tuple(tokens[i:i + n])
        counts[gram] = counts.get(gram, 0) + 1
    return max(counts.values(), default=0)


def longest_run(tokens: Sequence[str], max_unit: int = 4) -> int:
    """Most back-to-back repeats of any unit of 1..``max_unit`` tokens ("no no no", "go on go on")."""
    best = 1 if tokens else 0
    for n in range(1, max_unit + 1):
        for start in range(len(tokens) - n):
            unit, count, i = tokens[start:start + n], 1, start + n
            while tokens[i:i + n] == unit:
                count, i = count + 1, i + n
            best = max(best, count)
    return best


def check_repetition(record: LabelRecord, th: FilterThresholds, language: str) -> str | None:
    tokens = words_of(record.text, language)
    n = th.ngram_words * (2 if is_unspaced(language) else 1)
    unit = 4 * (2 if is_unspaced(language) else 1)
    if max_ngram_count(tokens, n) > th.max_ngram_repeats or longest_run(tokens, unit) > th.max_ngram_repeats:
        return "repetition"
    return None


def check_unique_words(record: LabelRecord, th: FilterThresholds, language: str) -> str | None:
    if is_unspaced(language):
        return None
    tokens = words_of(record.text, language)
    if len(tokens) >= th.min_words_for_share and len(set(tokens)) / len(tokens) <= th.min_unique_word_share:
        return "low_unique_words"
    return None


def check_long_word(record: LabelRecord, th: FilterThresholds, language: str) -> str | None:
    if is_unspaced(language):
        return None
    return "long_word" if any(len(w) > th.max_word_chars for w in record.text.split()) else None


def check_blocklist(record: LabelRecord, th: FilterThresholds, language: str) -> str | None:
    text = normalise(record.text)
    if text in blocked_whole_texts():
        return "blocklist"
    squeezed = text.replace(" ", "")
    padded = f" {text} "
    for phrase in blocked_phrases(language):
        if f" {phrase} " in padded or (is_unspaced(language) and phrase.replace(" ", "") in squeezed):
            return "blocklist"
    return None


def check_language(record: LabelRecord, th: FilterThresholds, language: str) -> str | None:
    return "language" if record.language and record.language != language else None


def check_agreement(record: LabelRecord, th: FilterThresholds) -> str | None:
    """Two models that hear different words in a window: at least one is wrong, and on real
    speech it is usually the seed (bench/label_quality.py)."""
    if record.agreement is not None and record.agreement < th.min_agreement:
        return "disagreement"
    return None


def check_subtitle_cer(record: LabelRecord, th: FilterThresholds) -> str | None:
    if record.reference_cer is not None and record.reference_cer > th.max_cer:
        return "subtitle_cer"
    return None


WindowCheck = Callable[[LabelRecord, FilterThresholds, str], "str | None"]

WINDOW_CHECKS: dict[str, WindowCheck] = {
    "empty": lambda r, th, lang: check_empty(r, th),
    "no_speech": lambda r, th, lang: check_no_speech(r, th),
    "music": lambda r, th, lang: check_music(r, th),
    "low_snr": lambda r, th, lang: check_snr(r, th),
    "compression_ratio": lambda r, th, lang: check_compression(r, th),
    "low_logprob": lambda r, th, lang: check_logprob(r, th),
    "low_confidence": lambda r, th, lang: check_confidence(r, th),
    "disagreement": lambda r, th, lang: check_agreement(r, th),
    "repetition": check_repetition,
    "low_unique_words": check_unique_words,
    "long_word": check_long_word,
    "blocklist": check_blocklist,
    "language": check_language,
    "subtitle_cer": lambda r, th, lang: check_subtitle_cer(r, th),
}


def window_flags(record: LabelRecord, th: FilterThresholds, language: str) -> list[str]:
    """Flags of the per-window filters, in FILTER_NAMES order."""
    flags = []
    for name, check in WINDOW_CHECKS.items():
        if name not in th.disabled:
            flag = check(record, th, language)
            if flag:
                flags.append(flag)
    return flags


def rate_fences(rates: Sequence[float], factor: float) -> tuple[float, float]:
    """Tukey fences (Q1 - k IQR, Q3 + k IQR) of a source's speaking rates."""
    q1, q3 = np.percentile(np.asarray(rates, dtype=float), [25, 75])
    return float(q1 - factor * (q3 - q1)), float(q3 + factor * (q3 - q1))


def apply_filters(records: list[LabelRecord], th: FilterThresholds, language: str) -> list[LabelRecord]:
    """Set ``flags`` on a source's records: per-window checks, then the source-relative rate check."""
    for record in records:
        record.flags = window_flags(record, th, language)
    if "speaking_rate" in th.disabled:
        return records
    rates = [r.chars_per_second for r in records if not r.flags]
    if len(rates) >= th.min_windows_for_rate:
        low, high = rate_fences(rates, th.rate_iqr_factor)
        for record in records:
            if not record.flags and not low <= record.chars_per_second <= high:
                record.flags.append("speaking_rate")
    return records


def confidence_score(record: LabelRecord) -> float:
    """The signal windows are ranked by for ``--keep-fraction``: the agreement with the
    ``--check-model`` where one ran, else the mean word probability. Chosen by
    bench/label_quality.py: keeping the 75 % of its 80 real recorded clips each signal ranks
    highest, agreement with tiny.en gave 0.66x the seed's mean CER, mean word probability
    0.75x, average log-probability 0.76x, minimum word probability 0.88x."""
    if record.agreement is not None:
        return record.agreement
    return -1.0 if record.mean_word_prob is None else record.mean_word_prob


def apply_keep_fraction(records: list[LabelRecord], fraction: float, whole_corpus: bool) -> list[LabelRecord]:
    """Flag ``below_keep_fraction`` on the kept windows outside the most confident ``fraction``
    of them, per source (default) or over all records given (``whole_corpus``)."""
    groups: dict[str, list[LabelRecord]] = {}
    for record in records:
        if record.kept:
            groups.setdefault("" if whole_corpus else record.source_id, []).append(record)
    for group in groups.values():
        ranked = sorted(group, key=lambda r: (-confidence_score(r), r.source_id, r.index))
        for record in ranked[math.ceil(len(ranked) * fraction - 1e-9):]:
            record.flags.append(KEEP_FRACTION_FLAG)
    return records
