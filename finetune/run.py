"""One fine-tuning run from validated inputs to exported model, card and curves.

Order matters for the user: every check that can fail on bad input (dataset,
language, model, disk space) runs before the first training step, and every
output is written atomically and recorded in the journal, so a rerun of a
finished run does nothing and a rerun of a killed one resumes.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune import card as model_card
from finetune.curves import CURVES_DIR, write_pngs
from finetune.data import DatasetInput, load_dataset_input
from finetune.export import CT2_DIR, carry_tensorboard_logs, export_ct2, push_to_hub, save_transformers
from finetune.features import Featurizer
from finetune.memory import dims_from_config
from finetune.metrics import headline_metric
from finetune.options import FinetuneOptions
from finetune.packing import Pack, pack_examples, packing_report, unpacked
from finetune.precision import dtype_name
from finetune.presets import TrainingPlan, bitsandbytes_available, make_plan
from finetune.train import Trainer, TrainResult, format_scores, step_seconds_summary
from whcore.errors import UserError
from whcore.journal import DATASET_UNIT, MODEL_UNIT, PUSH_UNIT, Journal
from whcore.publish import publish_folder
from whcore.workspace import Workspace

STAGE = "finetune"
TASKS = ("transcribe", "translate")
BYTES_PER_PARAM = 4  # fp32 master weights (and the fp32 export)
OPTIMIZER_STATE_FACTOR = {"adamw": 2.0, "adamw_8bit": 0.5, "adafactor": 0.1}  # x weight bytes
KEPT_CHECKPOINTS = 2  # latest and best
RESULTS_NAME = "results.json"


@dataclass(frozen=True)
class PreparedData:
    dataset: DatasetInput
    language: str
    train: list[Pack]
    test: list[Pack]
    packing: list[str]


def prepare_data(options: FinetuneOptions, log: Any) -> PreparedData:
    """Load and check the dataset, pick the language, pack the splits."""
    from whcore.models import validate_language

    if options.task not in TASKS:
        raise UserError(f"--task {options.task!r}: use one of {', '.join(TASKS)}")
    dataset = load_dataset_input(options.dataset)
    for problem in dataset.problems:
        log.error(problem)
    if options.language:
        language = validate_language(options.language)
    elif dataset.language:
        language = validate_language(dataset.language)
        log.info(f"language {language} (from the dataset's language column)")
    else:
        language = "en"
        log.warning("no --language and no language column in the dataset: assuming en")
    lines, splits = [], {}
    for split in ("train", "test"):
        examples = dataset.splits[split]
        packs = pack_examples(examples) if options.pack else unpacked(examples)
        splits[split] = packs
        if options.pack:
            lines.append(packing_report(examples, packs).describe(split))
            log.info(f"packing {lines[-1]}")
    return PreparedData(dataset, language, splits["train"], splits["test"], lines)


def ensure_disk_space(folder: Path, needed_bytes: int) -> None:
    """UserError if the filesystem holding ``folder`` has less than ``needed_bytes`` free."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed_bytes:
        raise UserError(f"not enough disk space for checkpoints in {folder}: "
                        f"{free / 2**30:.1f} GiB free, about {needed_bytes / 2**30:.1f} GiB needed; "
                        "free space or pass --output / --workspace on a bigger disk")


def estimated_bytes(trainable_params: int, total_params: int, plan: TrainingPlan) -> int:
    """Disk for the kept checkpoints plus the exported model (fp32 + int8 CT2 copy).

    A checkpoint holds only the trainable weights and their optimizer state:
    under LoRA the adapters, tens of MB even for large-v3."""
    checkpoint = trainable_params * BYTES_PER_PARAM * (1 + OPTIMIZER_STATE_FACTOR[plan.optimizer])
    export = total_params * (BYTES_PER_PARAM + 1)
    return int(KEPT_CHECKPOINTS * checkpoint + export)


def disk_needed(plan: TrainingPlan, total_params: int) -> int:
    """``estimated_bytes`` with the plan's trainable count (LoRA: the adapters only)."""
    trainable = plan.memory.trainable_params if plan.memory is not None else total_params
    return estimated_bytes(trainable, total_params, plan)


def build_plan(options: FinetuneOptions, model: Any, train_inputs: int, label_tokens: int) -> TrainingPlan:
    """The plan for this machine, fitted by simulating this model's step at this label length."""
    from whcore.device import detect_gpu

    gpu = None if options.cpu else detect_gpu()
    processes = int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate launch / torchrun
    # At least one sample per process: a DDP rank with nothing to do would hang the others.
    return make_plan(effective_batch=max(processes, min(options.effective_batch, max(train_inputs, 1))),
                     dims=dims_from_config(model.config), gpu=gpu, vram_gb=options.vram_gb,
                     bnb_available=bitsandbytes_available(), num_processes=processes, lora=options.lora,
                     batch_override=options.batch_size, optimizer=options.optimizer,
                     label_tokens=label_tokens)


def log_plan(plan: TrainingPlan, log: Any) -> None:
    """The plan, why it was chosen and its simulated memory, before the first step."""
    log.info(plan.describe())
    if plan.reason:
        log.info(f"why: {plan.reason}")
    if plan.memory is not None:
        for line in plan.memory.lines():
            log.info(f"memory:{line}")


def check_english_only(options: FinetuneOptions, language: str, english_only: bool) -> None:
    """UserError when an English-only model is asked for another language or for translation."""
    if english_only and (language != "en" or options.task != "transcribe"):
        raise UserError(f"model {options.model!r} is English-only: it can only be fine-tuned with "
                        f"--language en --task transcribe (got {language}, {options.task}); "
                        "use a multilingual model for other languages")


def export_params(options: FinetuneOptions, training_params: dict[str, Any]) -> dict[str, Any]:
    return {"training": training_params, "ct2": options.ct2_quantization}


def finetune(options: FinetuneOptions, workspace: Workspace, log: Any) -> int:
    """Train (or resume), export and push; returns the exit code (1: the push failed)."""
    from whcore.ct2_convert import is_english_only
    from whcore.models import load_hf_whisper, model_fingerprint

    base_identity = model_fingerprint(options.model)  # cheap: a bad SPEC fails before the dataset is read
    journal = Journal(workspace, STAGE)
    data = prepare_data(options, log)
    params = options.training_params(data.dataset.digest, data.language, base_identity)
    done_params = export_params(options, params)
    if journal.is_done(MODEL_UNIT, done_params) and (options.output / "config.json").is_file():
        log.info(f"model already fine-tuned and exported to {options.output} with these settings; "
                 "nothing to do (change a setting or delete it to train again)")
        return push_unit(options, journal, done_params, log)
    log.info(f"loading {options.model}")
    model, processor = load_hf_whisper(options.model)
    total = sum(p.numel() for p in model.parameters())
    english_only = is_english_only(model.config.vocab_size)
    check_english_only(options, data.language, english_only)
    featurizer = Featurizer(processor, data.language, options.task, log, english_only=english_only)
    plan = build_plan(options, model, len(data.train), featurizer.longest_label(data.train))
    log_plan(plan, log)
    ensure_disk_space(options.checkpoints, disk_needed(plan, total))
    # The plan's precision, optimizer, LoRA and checkpointing shape the checkpointed state: a
    # resume under another plan (another GPU, --optimizer) logs what changed and starts clean.
    run_params = {**params, "plan": plan.state_params()}
    trainer = Trainer(options, plan, model, featurizer, data.train, data.test, data.language,
                      journal, run_params, log)
    result = trainer.run()
    if not trainer.accelerator.is_main_process:
        return 0
    files = write_outputs(options, workspace, data, trainer.final_model(result), processor, result,
                          {"training_params": params, "base_model": base_identity},
                          featurizer.prompt(data.language, options.task))
    log.info(f"published the model ({record_dtype(options.output)} transformers weights + CTranslate2 "
             f"{options.ct2_quantization} in "
             f"{CT2_DIR}/, curves, results, card) to {options.output}")
    journal.mark_done(MODEL_UNIT, done_params, files=[f for f in files if _inside(workspace, f)],
                      extra={"output": str(options.output), "steps": result.progress.step,
                             "dataset_files": trained_dataset_files(options, workspace)})
    remove_checkpoints(options.checkpoints, log)
    report(options, data, result, log)
    return push_unit(options, journal, done_params, log)


def trained_dataset_files(options: FinetuneOptions, workspace: Workspace) -> dict[str, Any] | None:
    """The files of label's dataset unit this model was trained on (None: another dataset).

    ``python -m status`` compares them with the dataset's latest DONE line: a dataset
    rebuilt with the same files does not retrain the model, so its newer time alone
    must not predict a retraining.
    """
    if options.dataset.resolve() != workspace.dataset_dir.resolve():
        return None
    dataset = Journal(workspace, "label").entries().get(DATASET_UNIT)
    return dict(dataset.files) if dataset is not None else None


def push_unit(options: FinetuneOptions, journal: Journal, model_params: str, log: Any) -> int:
    """Upload the published model once per model version and repo, as its own journal unit.

    Returns the exit code: 0 when pushed (now or before) or not asked, 1 when
    the upload failed. A failed upload is one error line; the model stays
    recorded as done, and the next run (which finds it done) only retries
    the push.
    """
    if not options.push_to_hub:
        return 0
    params = {"model": model_params, "repo": options.push_to_hub}
    if journal.is_done(PUSH_UNIT, params):
        log.info(f"already pushed this model to {options.push_to_hub}; skipping the upload")
        return 0
    try:
        push_to_hub(options.output, options.push_to_hub, log)
    except UserError as error:
        log.error(f"{error}; rerun the same command to retry the upload (training is not redone)")
        return 1
    journal.mark_done(PUSH_UNIT, params, extra={"repo": options.push_to_hub})
    return 0


def write_outputs(options: FinetuneOptions, workspace: Workspace, data: PreparedData, model: Any,
                  processor: Any, result: TrainResult, provenance: dict[str, str],
                  prompt: dict[str, str | None]) -> list[Path]:
    """Publish the model folder in one step: transformers model, CT2 copy, curves, results, card.

    ``provenance`` (training params, base model identity) is recorded in the
    folder's provenance marker with the fingerprint of the weights saved.
    """
    output = options.output
    record = {**provenance, "weights_dtype": dtype_name(model)}
    with publish_folder(output, provenance=record) as staging:
        save_transformers(model, processor, staging, prompt)
        record["weights"] = export_ct2(staging, options.ct2_quantization)
        carry_tensorboard_logs(output, staging)
        write_pngs(result.progress, result.baseline, staging / CURVES_DIR)
        results = {"language": data.language, "headline_metric": headline_metric(data.language),
                   "weights_dtype": dtype_name(model),
                   "baseline": result.baseline.to_dict(),
                   "finetuned": result.best.to_dict() if result.best else None,
                   "best_step": result.progress.best_step, "steps": result.progress.step,
                   "stopped_early": result.progress.stopped_early,
                   "median_step_seconds": step_seconds_summary(result.progress),
                   "plan": result.plan.describe(), "train_log": result.progress.train_log,
                   "evals": result.progress.evals}
        (staging / RESULTS_NAME).write_text(json.dumps(results, indent=1), encoding="utf-8")
        facts = model_card.CardFacts(options, options.model, data.language, data.dataset, result.plan,
                                     result.baseline, result.best, result.progress.best_step,
                                     result.progress.step, result.progress.stopped_early, data.packing)
        (staging / "README.md").write_text(model_card.render_card(facts, workspace), encoding="utf-8")
    return sorted(p for p in output.rglob("*") if p.is_file())


def record_dtype(output: Path) -> str:
    """The weights' dtype as the published config.json states it."""
    config = json.loads((output / "config.json").read_text(encoding="utf-8"))
    return str(config.get("dtype") or config.get("torch_dtype") or "float32")


def report(options: FinetuneOptions, data: PreparedData, result: TrainResult, log: Any) -> None:
    """The final lines: baseline vs fine-tuned on the test split, and the verdict."""
    test = data.dataset
    log.info(f"test split: {test.hours('test'):.3f} h, {len(test.source_ids('test'))} source(s)")
    log.info(f"before: {format_scores(result.baseline)}")
    if result.best is not None:
        log.info(f"after (step {result.progress.best_step}): {format_scores(result.best)}")
    facts = model_card.CardFacts(options, options.model, data.language, test, result.plan,
                                 result.baseline, result.best, result.progress.best_step,
                                 result.progress.step, result.progress.stopped_early, data.packing)
    verdict = model_card.verdict(facts)
    (log.warning if "WORSE" in verdict else log.info)(verdict)
    log.info(f"model: {options.output} (CTranslate2 copy: {options.output / 'ct2'})")


def remove_checkpoints(root: Path, log: Any) -> None:
    """Drop the run's checkpoints once the model is exported and recorded.

    They only serve a resume of this exact run, which is finished: a rerun
    with the same settings skips, and other settings start afresh.
    """
    if not root.is_dir():
        return
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    shutil.rmtree(root, ignore_errors=True)
    log.info(f"removed the run's checkpoints ({size / 2**30:.1f} GiB); the model is exported")


def _inside(workspace: Workspace, path: Path) -> bool:
    try:
        workspace.relative(path)
    except ValueError:
        return False
    return True
