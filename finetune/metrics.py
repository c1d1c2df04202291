"""WER, normalised WER and CER, and which of them is the headline.

WER is computed as in the Hugging Face fine-tuning guide: raw (case and
punctuation count) and normalised (Whisper's text normaliser: English one for
English, the basic one for everything else). Chinese, Japanese, Korean, Thai
and other scripts without word spaces get CER as the headline, because a
"word" there is a whole sentence and WER says nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

CER_HEADLINE_LANGUAGES = frozenset({"zh", "ja", "ko", "th", "yue", "lo", "my", "km", "bo"})


@dataclass(frozen=True)
class Scores:
    """Error rates in percent on one evaluation (lower is better)."""

    wer: float
    normalized_wer: float
    cer: float
    samples: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def headline_metric(language: str) -> str:
    """The Scores field early stopping and the report judge by."""
    return "cer" if language in CER_HEADLINE_LANGUAGES else "normalized_wer"


def normalizer_for(language: str):  # noqa: ANN201 - a transformers normaliser object
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer, EnglishTextNormalizer

    if language == "en":
        return EnglishTextNormalizer({})
    return BasicTextNormalizer(remove_diacritics=False, split_letters=language in CER_HEADLINE_LANGUAGES)


def score(references: list[str], hypotheses: list[str], language: str) -> Scores:
    """Scores of ``hypotheses`` against ``references`` (rows with an empty reference skipped)."""
    import jiwer

    pairs = [(r, h) for r, h in zip(references, hypotheses) if r.strip()]
    if not pairs:
        return Scores(0.0, 0.0, 0.0, 0)
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    normalize = normalizer_for(language)
    norm_pairs = [(normalize(r), normalize(h)) for r, h in pairs]
    norm_pairs = [(r, h) for r, h in norm_pairs if r.strip()]
    normalized = (100 * jiwer.wer([r for r, _ in norm_pairs], [h for _, h in norm_pairs])
                  if norm_pairs else 0.0)
    cer_refs = [_no_spaces(r) if language in CER_HEADLINE_LANGUAGES else r for r in refs]
    cer_hyps = [_no_spaces(h) if language in CER_HEADLINE_LANGUAGES else h for h in hyps]
    return Scores(wer=100 * jiwer.wer(refs, hyps), normalized_wer=normalized,
                  cer=100 * jiwer.cer(cer_refs, cer_hyps), samples=len(pairs))


def _no_spaces(text: str) -> str:
    """CER for unspaced scripts ignores the spaces some transcripts put between phrases."""
    return "".join(text.split()) or text
