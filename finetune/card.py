"""The model card (``<output>/README.md``): what was trained on what, and whether it helped.

The before/after table is the honest part: baseline and fine-tuned scores on
the same test split, with the split's hours and number of sources, and a
plain sentence when the fine-tune made things worse. Attribution comes from
the harvest's source records (title, uploader, URL, licence) and, where the
dataset has its own card, that card's sources section.

The card is published (``--push-to-hub``), so it names local things by
their folder name only: no absolute path, no ``file://`` URL and no local
user name reaches it, whatever the base model, dataset or copied card say.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass
from pathlib import Path

from finetune.data import DatasetInput
from finetune.metrics import Scores, headline_metric
from finetune.options import FinetuneOptions
from finetune.presets import TrainingPlan
from whcore.records import SourceRecord
from whcore.workspace import Workspace

METRIC_LABELS = {"wer": "WER", "normalized_wer": "normalised WER", "cer": "CER"}
MAX_LISTED_SOURCES = 200
# Account names that say nothing about a person and are ordinary words in titles.
GENERIC_ACCOUNTS = frozenset({"root", "user", "admin", "runner", "ubuntu", "debian", "docker"})


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
    base = public_model_name(facts.base_model)
    front = ["---", f"language: {facts.language}", "library_name: transformers",
             "pipeline_tag: automatic-speech-recognition"]
    if not _is_local(facts.base_model):  # base_model must be a Hub id; a local folder is no link
        front.append(f"base_model: {facts.base_model}")
    lines = [
        *front, "tags: [whisper, whisper-harvest]", "---", "",
        f"# {base} fine-tuned with whisper-harvest ({facts.language}, {o.task})", "",
        verdict(facts), "",
        "## Results on the test split", "",
        f"Test split: {d.hours('test'):.3f} h from {len(d.source_ids('test'))} source(s), "
        f"{len(d.splits['test'])} row(s); greedy decoding. Headline metric: "
        f"{METRIC_LABELS[headline_metric(facts.language)]}.", "",
        "| model | WER | normalised WER | CER |", "|---|---|---|---|",
        _row(f"{base} (before)", facts.baseline),
    ]
    if facts.final is not None:
        lines.append(_row(f"fine-tuned, step {facts.best_step} (after)", facts.final))
    lines += [
        "", "## Training data", "",
        f"- dataset: `{d.path.name}`",
        f"- train: {d.hours('train'):.3f} h, {len(d.splits['train'])} row(s), "
        f"{len(d.source_ids('train'))} source(s)",
        f"- test: {d.hours('test'):.3f} h, {len(d.splits['test'])} row(s), "
        f"{len(d.source_ids('test'))} source(s)",
        *[f"- packing {line}" for line in facts.packing], "",
        "## Training settings", "",
        f"- base model: `{base}`; language `{facts.language}`, task `{o.task}`",
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
        "or `python -m label --model DIR` for the next self-training round (it uses `ct2/` while "
        "it matches the weights)",
        "- `curves/` loss and error-rate PNGs; `runs/` TensorBoard logs", "",
    ]
    return scrub_local_paths("\n".join(lines), [d.path, *([workspace.root] if workspace else [])])


def _is_local(spec: str) -> bool:
    return spec.startswith(("/", ".", "~")) or Path(spec).expanduser().exists()


def public_model_name(spec: str) -> str:
    """How the card names a base model: a Hub id as is, a local folder by its name only."""
    return f"{Path(spec).expanduser().resolve().name} (local model folder)" if _is_local(spec) else spec


def scrub_local_paths(text: str, roots: list[Path]) -> str:
    """``text`` with ``file://`` URLs, paths under ``roots`` or the home folder, and the local
    user name replaced by neutral words, so nothing about this machine is published."""
    text = re.sub(r"file://\S+", lambda m: f"local file {_last_part(m.group(0))}", text)
    home = Path(os.path.expanduser("~"))
    for root in sorted({str(Path(r).resolve()) for r in roots} | {str(home)}, key=len, reverse=True):
        if len(root) > 1:
            text = re.sub(re.escape(root) + r"[^\s`)\]]*", lambda m: _last_part(m.group(0)), text)
    user = _user_name()
    if user and len(user) > 2 and user not in GENERIC_ACCOUNTS:
        text = re.sub(rf"(?<![\w.-]){re.escape(user)}(?![\w.-])", "<user>", text)
    return text


def _last_part(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or "."


def _user_name() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database entry (containers): nothing to hide
        return None


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
