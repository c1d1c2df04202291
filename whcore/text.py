"""Text rules every stage shares: which scripts have no word spaces, and how text is
normalised before it is scored.

One place, because label's CER gate and finetune's metrics must judge text the same
way: a window kept by label at CER 0.2 should score 0.2 in finetune's report too.
Scoring uses Whisper's own normalisers (the ``whisper-normalizer`` package ships
OpenAI's English normaliser *with* its British→American spelling table, which the
copy inside transformers only gets from a model repository's ``normalizer.json``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

# Scripts written without spaces between words: CER is computed on characters with
# spaces dropped, and texts of consecutive windows are joined without a space.
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "km", "bo", "yue"})
# Languages whose headline error rate is CER rather than WER. Korean puts spaces
# between phrases (eojeol), so it is spaced, but a Korean "word" is too coarse for WER.
CER_LANGUAGES = UNSPACED_LANGUAGES | {"ko"}


def is_unspaced(language: str | None) -> bool:
    """Whether ``language`` (an ISO code such as ``zh`` or ``zh-TW``) writes no word spaces."""
    return bool(language) and language.split("-")[0].lower() in UNSPACED_LANGUAGES


def uses_cer(language: str | None) -> bool:
    """Whether CER, not WER, is the headline error rate for ``language``."""
    return bool(language) and language.split("-")[0].lower() in CER_LANGUAGES


def join_texts(texts: list[str], language: str | None) -> str:
    """Consecutive transcripts as one text: no spaces are invented inside unspaced scripts."""
    parts = [t.strip() for t in texts if t.strip()]
    return ("" if is_unspaced(language) else " ").join(parts)


@lru_cache(maxsize=8)
def scoring_normaliser(language: str | None) -> Callable[[str], str]:
    """Whisper's English normaliser for English, its basic one for every other language."""
    if language and language.split("-")[0].lower() == "en":
        from whisper_normalizer.english import EnglishTextNormalizer

        return EnglishTextNormalizer()
    from whisper_normalizer.basic import BasicTextNormalizer

    return BasicTextNormalizer(remove_diacritics=False, split_letters=False)


def normalise_for_scoring(text: str, language: str | None) -> str:
    """``text`` as it is compared in CER/WER: normalised, spaces dropped for unspaced scripts."""
    normalised = " ".join(scoring_normaliser(language)(text).split())
    return normalised.replace(" ", "") if is_unspaced(language) else normalised


def character_error_rate(reference: str, hypothesis: str, language: str | None) -> float:
    """CER of ``hypothesis`` against ``reference`` after scoring normalisation (1.0 if the
    reference normalises to nothing but the hypothesis does not, 0.0 if both are empty)."""
    import jiwer

    ref = normalise_for_scoring(reference, language)
    hyp = normalise_for_scoring(hypothesis, language)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.cer(ref, hyp))
