"""WER, normalised WER and CER, and which of them is the headline.

WER is computed as in the Hugging Face fine-tuning guide: raw (case and
punctuation count) and normalised. Normalisation, the scripts without word
spaces and the languages judged by CER all come from ``whcore.text``, the
same rules label's CER gate uses, so a window label kept at CER 0.2 scores
0.2 here too. Chinese, Japanese, Korean, Thai and other such languages get
CER as the headline, because a "word" there is a whole phrase and WER says
nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from whcore.text import normalise_for_scoring, uses_cer


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
    return "cer" if uses_cer(language) else "normalized_wer"


def score(references: list[str], hypotheses: list[str], language: str) -> Scores:
    """Scores of ``hypotheses`` against ``references`` (rows with an empty reference skipped).

    CER is computed on the scoring-normalised texts (spaces dropped for
    unspaced scripts), exactly as label's gate computes it.
    """
    import jiwer

    pairs = [(r, h) for r, h in zip(references, hypotheses) if r.strip()]
    if not pairs:
        return Scores(0.0, 0.0, 0.0, 0)
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    norm_pairs = [(normalise_for_scoring(r, language), normalise_for_scoring(h, language)) for r, h in pairs]
    norm_pairs = [(r, h) for r, h in norm_pairs if r]
    if not norm_pairs:
        return Scores(100 * jiwer.wer(refs, hyps), 0.0, 0.0, len(pairs))
    norm_refs, norm_hyps = [r for r, _ in norm_pairs], [h for _, h in norm_pairs]
    return Scores(wer=100 * jiwer.wer(refs, hyps), normalized_wer=100 * jiwer.wer(norm_refs, norm_hyps),
                  cer=100 * jiwer.cer(norm_refs, norm_hyps), samples=len(pairs))
