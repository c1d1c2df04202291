"""Corpus report: one PNG a user can glance at to judge the labels.

Hours per source, kept/rejected windows by reason, and the distributions of
the confidence signals (mean and minimum word probability, average
log-probability, and the agreement with ``--check-model`` where one ran), of
the speaking rate, Silero's speech probability, the tonality and the estimated
speech-to-noise ratio, kept vs rejected: a threshold that
cuts through the kept mass, or rejected windows piled up at high confidence,
shows at a glance. matplotlib's Agg backend draws without a display.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from whcore.atomic import atomic_path  # noqa: E402
from whcore.records import LabelRecord  # noqa: E402

MAX_SOURCES_SHOWN = 30


def draw_report(records: Sequence[LabelRecord], path: Path) -> Path:
    """Write the report PNG to ``path`` atomically and return it."""
    checked = any(r.agreement is not None for r in records)
    rows = 6 if checked else 5
    figure, axes = plt.subplots(rows, 2, figsize=(12, 4 * rows))
    hours: dict[str, float] = collections.defaultdict(float)
    for record in records:
        if record.kept:
            hours[record.source_id] += (record.end - record.start) / 3600
    top = sorted(hours.items(), key=lambda item: -item[1])[:MAX_SOURCES_SHOWN]
    axes[0, 0].barh([k for k, _ in top], [v for _, v in top])
    axes[0, 0].set_title("kept hours per source")
    reasons = collections.Counter(flag for r in records for flag in r.flags)
    reasons["kept"] = sum(r.kept for r in records)
    names = sorted(reasons, key=lambda k: -reasons[k])
    axes[0, 1].bar(names, [reasons[n] for n in names], color=["tab:green" if n == "kept" else "tab:red"
                                                               for n in names])
    axes[0, 1].set_title("windows kept / rejected by reason")
    axes[0, 1].tick_params(axis="x", rotation=45)
    panels = [(axes[1, 0], "mean_word_prob", "mean word probability (confidence)"),
              (axes[1, 1], "min_word_prob", "minimum word probability"),
              (axes[2, 0], "avg_logprob", "average log-probability"),
              (axes[2, 1], "chars_per_second", "speaking rate (spoken characters / s of speech)"),
              (axes[3, 0], "vad_speech_prob", "Silero VAD speech probability"),
              (axes[3, 1], "tonality", "tonality (music is high)"),
              (axes[4, 0], "snr_db", "estimated speech-to-noise ratio, dB (WADA-SNR)")]
    if checked:
        panels.append((axes[5, 0], "agreement", "agreement with the check model (1 - CER)"))
        draw_agreement_scatter(axes[5, 1], records)
    axes[4, 1].axis("off")
    for ax, attribute, title in panels:
        kept = [getattr(r, attribute) for r in records if r.kept and getattr(r, attribute) is not None]
        rejected = [getattr(r, attribute) for r in records if not r.kept and getattr(r, attribute) is not None]
        ax.hist([kept, rejected], bins=30, label=["kept", "rejected"], color=["tab:green", "tab:red"],
                stacked=True)
        ax.set_title(title)
        ax.legend()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=80)
    plt.close(figure)
    return path


def draw_agreement_scatter(ax: matplotlib.axes.Axes, records: Sequence[LabelRecord]) -> None:
    """Agreement against mean word probability: labels the seed is sure of that the check
    model contradicts sit at the bottom right, the ones the confidence filter alone keeps."""
    for kept, colour, name in ((True, "tab:green", "kept"), (False, "tab:red", "rejected")):
        points = [(r.mean_word_prob, r.agreement) for r in records
                  if r.kept == kept and r.mean_word_prob is not None and r.agreement is not None]
        ax.scatter([p for p, _ in points], [a for _, a in points], s=8, c=colour, label=name, alpha=0.6)
    ax.set_xlabel("mean word probability")
    ax.set_ylabel("agreement")
    ax.set_title("agreement vs confidence")
    ax.legend()
