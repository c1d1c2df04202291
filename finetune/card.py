"""The model card (``<output>/README.md``): what was trained on what, and whether it helped.

The before/after table is the honest part: baseline and fine-tuned scores on
the same test split, with the split's hours and number of sources, and a
plain sentence when the fine-tune made things worse. Attribution comes from
the harvest's source records (title, uploader, URL, licence) and, where the
dataset has its own card, that card's sources section.
"""

from __future__ import annotations

from dataclasses import dataclass

from finetune.data import DatasetInput
from finetune.metrics import Scores, headline_metric
from finetune.options import FinetuneOptions
from finetune.presets import TrainingPlan
from whcore.records import SourceRecord
from whcore.workspace import Workspace

METRIC_LABELS = {"wer": "WER", "normalized_wer": "normalised WER", "cer": "CER"}
MAX_LISTED_SOURCES = 200


@dataclass(frozen=True)
class CardFacts:
    """Everything the card states."""

    options: FinetuneOptions
    base_model: str
    language: str
    dataset: DatasetInput
    plan: TrainingPlan
    baseline: Scores
    final: Scores | None
    best_step: int | None
    steps_run: int
    stopped_early: bool
    packing: list[str]  # PackingReport.describe lines


def verdict(facts: CardFacts) -> str:
    """One plain sentence: better, the same, or worse on the headline metric."""
    metric = headline_metric(facts.language)
    if facts.final is None:
        return "No fine-tuned evaluation was recorded."
    before, after = getattr(facts.baseline, metric), getattr(facts.final, metric)
    label = METRIC_LABELS[metric]
    if after < before:
        return f"The fine-tune improved {label} on the test split from {before:.1f} to {after:.1f}."
    if after > before:
        return (f"The fine-tune made {label} on the test split WORSE: {before:.1f} before, "
                f"{after:.1f} after. Prefer the base model, or train on more or cleaner data.")
    return f"The fine-tune left {label} on the test split unchanged at {after:.1f}."


def render_card(facts: CardFacts, workspace: Workspace | None) -> str:
    o, d = facts.options, facts.dataset
    lines = [
        "---", f"language: {facts.language}", "library_name: transformers",
        "pipeline_tag: automatic-speech-recognition", f"base_model: {facts.base_model}",
        "tags: [whisper, whisper-harvest]", "---", "",
        f"# {facts.base_model} fine-tuned with whisper-harvest ({facts.language}, {o.task})", "",
        verdict(facts), "",
        "## Results on the test split", "",
        f"Test split: {d.hours('test'):.3f} h from {len(d.source_ids('test'))} source(s), "
        f"{len(d.splits['test'])} row(s); greedy decoding. Headline metric: "
        f"{METRIC_LABELS[headline_metric(facts.language)]}.", "",
        "| model | WER | normalised WER | CER |", "|---|---|---|---|",
        _row(f"{facts.base_model} (before)", facts.baseline),
    ]
    if facts.final is not None:
        lines.append(_row(f"fine-tuned, step {facts.best_step} (after)", facts.final))
    lines += [
        "", "## Training data", "",
        f"- dataset: `{d.path}`",
        f"- train: {d.hours('train'):.3f} h, {len(d.splits['train'])} row(s), "
        f"{len(d.source_ids('train'))} source(s)",
        f"- test: {d.hours('test'):.3f} h, {len(d.splits['test'])} row(s), "
        f"{len(d.source_ids('test'))} source(s)",
        *[f"- packing {line}" for line in facts.packing], "",
        "## Training settings", "",
        f"- base model: `{o.model}`; language `{facts.language}`, task `{o.task}`",
        f"- steps: {facts.steps_run} of {o.max_steps}"
        f"{' (stopped early)' if facts.stopped_early else ''}; best checkpoint at step {facts.best_step}",
        f"- learning rate {o.learning_rate:g} (linear decay, warm-up {min(o.warmup_steps, o.max_steps // 10)} "
        f"steps), effective batch {facts.plan.effective_batch}, seed {o.seed}",
        f"- {facts.plan.describe()}",
        f"- evaluation every {o.eval_steps} steps, early-stopping patience {o.patience}", "",
        "## Sources and attribution", "",
        *_source_lines(d, workspace), *_dataset_card_sources(d), "",
        "## Files", "",
        "- `./` transformers model: `pipeline(\"automatic-speech-recognition\", model=DIR)`",
        f"- `ct2/` CTranslate2 ({o.ct2_quantization}): `faster_whisper.WhisperModel(DIR + \"/ct2\")`, "
        "or `python -m label --model DIR/ct2` for the next self-training round",
        "- `curves/` loss and error-rate PNGs; `runs/` TensorBoard logs", "",
    ]
    return "\n".join(lines)


def _row(name: str, scores: Scores) -> str:
    return f"| {name} | {scores.wer:.1f} | {scores.normalized_wer:.1f} | {scores.cer:.1f} |"


def _source_lines(dataset: DatasetInput, workspace: Workspace | None) -> list[str]:
    lines = []
    ids = dataset.source_ids()
    for source_id in ids[:MAX_LISTED_SOURCES]:
        record = _source_record(workspace, source_id)
        if record is None:
            lines.append(f"- `{source_id}`")
            continue
        who = record.uploader or record.channel or "uploader not stated"
        title = record.title or source_id
        link = f"[{title}]({record.url})" if record.url.startswith("http") else title
        lines.append(f"- {link} by {who} — licence: {record.license or 'not stated'}")
    if len(ids) > MAX_LISTED_SOURCES:
        lines.append(f"- … and {len(ids) - MAX_LISTED_SOURCES} more (see the dataset card)")
    return lines


def _source_record(workspace: Workspace | None, source_id: str) -> SourceRecord | None:
    if workspace is None:
        return None
    path = workspace.source_record_path(source_id)
    try:
        return SourceRecord.read(path)
    except (OSError, ValueError, TypeError):
        return None


def _dataset_card_sources(dataset: DatasetInput) -> list[str]:
    """The dataset card's section about sources / attribution / licence, copied as is."""
    if dataset.card is None:
        return []
    lines = dataset.card.read_text(encoding="utf-8", errors="replace").splitlines()
    copied: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("#"):
            inside = any(word in line.lower() for word in ("source", "attribution", "licen"))
            if inside:
                copied += ["", f"From the dataset card ({dataset.card.name}):", ""]
                continue
        if inside:
            copied.append(line)
    return copied
