"""The training loop: baseline, steps with accumulation, evaluation, checkpoints.

A plain loop rather than ``Seq2SeqTrainer`` because three things the issue
asks for sit awkwardly in the Trainer: retrying one step at half the batch
after a CUDA out-of-memory, checkpoints that count only once the journal
records them, and a data order that depends on nothing but the step number
(so a resumed run sees exactly the samples an uninterrupted one would).
``accelerate`` does device placement and DDP, so ``accelerate launch -m
finetune`` trains on several GPUs; autocast and loss scaling are
``finetune.step``'s, so the CPU runs the GPU's fp16/bf16 numerics too.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finetune import checkpoints
from finetune.checkpoints import Progress
from finetune.curves import CurveWriter
from finetune.evaluation import evaluate, transcribe_packs
from finetune.features import Featurizer
from finetune.lora import apply_lora
from finetune.memory import enable_activation_checkpointing
from finetune.metrics import Scores, headline_metric, score
from finetune.oom import evaluate_with_oom_fallback, run_with_oom_fallback
from finetune.options import FinetuneOptions
from finetune.order import StepOrder, pack_blocks
from finetune.packing import Pack
from finetune.precision import cast_base_for_training, check_trainable_fp32
from finetune.presets import TrainingPlan, bitsandbytes_available, with_batch
from finetune.step import Stepper, smaller_optimizer_advice
from whcore.errors import UserError
from whcore.journal import BASELINE_UNIT, Journal

EVAL_BATCH_CPU = 4


@dataclass(frozen=True)
class TrainResult:
    """What the export and the card need from training."""

    progress: Progress
    baseline: Scores
    best: Scores | None  # scores of the exported (best) checkpoint
    best_checkpoint: Path | None
    plan: TrainingPlan


def make_optimizer(name: str, params: list, lr: float) -> torch.optim.Optimizer:
    if name == "adamw_8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, lr=lr)
    if name == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=lr, scale_parameter=False, relative_step=False, warmup_init=False)
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)


def prepare_training(model: Any, plan: TrainingPlan, learning_rate: float, warmup_steps: int,
                     max_steps: int) -> tuple[Any, torch.optim.Optimizer, Any]:
    """``(model, optimizer, scheduler)`` as ``plan`` trains them: weights in the plan's dtype
    (fp32 master weights, or a half-precision LoRA base), checkpointing, adapters."""
    from transformers import get_linear_schedule_with_warmup

    model = cast_base_for_training(model, plan.base_dtype)
    if plan.gradient_checkpointing:
        model.config.use_cache = False
        enable_activation_checkpointing(model)
    if plan.lora:
        model = apply_lora(model)
    check_trainable_fp32(model)
    optimizer = make_optimizer(plan.optimizer, [p for p in model.parameters() if p.requires_grad],
                               learning_rate)
    warmup = min(warmup_steps, max_steps // 10)
    return model, optimizer, get_linear_schedule_with_warmup(optimizer, warmup, max_steps)


class Trainer:
    """One fine-tuning run on prepared packs; ``run()`` returns a TrainResult."""

    def __init__(self, options: FinetuneOptions, plan: TrainingPlan, model: Any, featurizer: Featurizer,
                 train_packs: Sequence[Pack], test_packs: Sequence[Pack], language: str, journal: Journal,
                 params: str, log: Any) -> None:
        from accelerate import Accelerator

        self.options, self.plan, self.featurizer = options, plan, featurizer
        self.train_packs, self.test_packs, self.language = train_packs, test_packs, language
        self.order = StepOrder(len(train_packs), options.seed, pack_blocks(train_packs))
        self.journal, self.params, self.log = journal, params, log
        self.writer: CurveWriter | None = None
        self.metric = headline_metric(language)
        self.accelerator = Accelerator(cpu=plan.device == "cpu", mixed_precision="no")  # AMP: finetune.step
        model, optimizer, self.scheduler = prepare_training(model, plan, options.learning_rate,
                                                            options.warmup_steps, options.max_steps)
        self.model = self.accelerator.prepare(model)
        self.optimizer = optimizer
        self.stepper = Stepper(self.model, optimizer, self.scheduler, plan.precision, self.accelerator.device,
                               no_sync=lambda: self.accelerator.no_sync(self.model),
                               optimizer_oom_advice=smaller_optimizer_advice(
                                   plan.optimizer, plan.lora, bitsandbytes_available()))
        self.root = options.checkpoints

    @property
    def unwrapped(self) -> Any:
        return self.accelerator.unwrap_model(self.model)

    def _generation_model(self) -> Any:
        model = self.unwrapped
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    def evaluate(self) -> Scores:
        """Scores on the test split; an out-of-memory halves the evaluation batch (finetune.oom)."""
        batch = EVAL_BATCH_CPU if self.plan.device == "cpu" else self.plan.per_device_batch * 2
        return evaluate_with_oom_fallback(self._evaluate_at, batch, self.stepper.discard, self.log)

    def _evaluate_at(self, batch: int) -> Scores:
        """Each process transcribes its share of the test split (every n-th input); the
        transcripts are gathered in order, so every process scores the whole split alike."""
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        if world == 1:
            with self.stepper.autocast():
                return evaluate(self._generation_model(), self.featurizer, self.test_packs,
                                language=self.language, task=self.options.task, batch_size=batch,
                                device=self.accelerator.device)
        from accelerate.utils import gather_object

        share = list(range(rank, len(self.test_packs), world))
        with self.stepper.autocast():
            texts = transcribe_packs(self._generation_model(), self.featurizer,
                                     [self.test_packs[i] for i in share], language=self.language,
                                     task=self.options.task, batch_size=batch, device=self.accelerator.device)
        ordered = dict(gather_object(list(zip(share, texts))))
        hypotheses = [ordered[i] for i in range(len(self.test_packs))]
        return score([p.text(self.language) for p in self.test_packs], hypotheses, self.language)

    # ---- baseline -------------------------------------------------------------------------

    def baseline(self) -> Scores:
        """Zero-shot scores of the starting model, computed once per run settings."""
        entry = self.journal.entries().get(BASELINE_UNIT)
        if entry is not None and self.journal.is_done(BASELINE_UNIT, self.params):
            self.log.info("baseline already evaluated (journal); skipping")
            return Scores(**entry.extra["scores"])
        self.log.info(f"evaluating the starting model on {len(self.test_packs)} test input(s) "
                      "(zero-shot baseline)")
        scores = self.evaluate()
        self.log.info(f"baseline: {format_scores(scores)}")
        if self.accelerator.is_main_process:
            self.journal.mark_done(BASELINE_UNIT, self.params, extra={"scores": scores.to_dict()})
        return scores

    # ---- resume -----------------------------------------------------------------------------

    def resume(self) -> Progress:
        folder = checkpoints.latest_recorded(self.journal, self.params, self.root)
        if folder is None:
            if self.options.resume:
                raise UserError(f"--resume: no finished checkpoint of this run is recorded in "
                                f"{self.journal.workspace.log_path}; run without --resume to start")
            return Progress(per_device_batch=self.plan.per_device_batch)
        progress = checkpoints.load_progress(folder)
        checkpoints.load_weights(self.unwrapped, folder)
        checkpoints.load_trainer_state(folder, self.optimizer, self.scheduler, self.stepper.scaler)
        if progress.per_device_batch and progress.per_device_batch < self.plan.per_device_batch:
            self.plan = with_batch(self.plan, progress.per_device_batch)
        self.log.info(f"resuming from {folder.name} (step {progress.step} of {self.options.max_steps})")
        return progress

    # ---- one optimizer step --------------------------------------------------------------

    def _samples_of_step(self, step: int) -> list[int]:
        indices = self.order.indices(step, self.plan.effective_batch)
        return indices[self.accelerator.process_index::self.accelerator.num_processes]

    def _run_step(self, indices: list[int], plan: TrainingPlan) -> float:
        chunks = [indices[i:i + plan.per_device_batch]
                  for i in range(0, len(indices), plan.per_device_batch)]
        return self.stepper.step((self._device_batch(chunk), len(chunk) / len(indices)) for chunk in chunks)

    def _device_batch(self, chunk: list[int]) -> dict[str, torch.Tensor]:
        batch = self.featurizer.batch([self.train_packs[i] for i in chunk])
        return {k: v.to(self.accelerator.device) for k, v in batch.items()}

    # ---- evaluation + checkpoint ---------------------------------------------------------

    def _checkpoint(self, progress: Progress) -> None:
        scores = self.evaluate()
        value = getattr(scores, self.metric)
        progress.evals.append({"step": progress.step, **scores.to_dict()})
        record_evaluation(progress, value, self.options.patience)
        self._share_decision(progress)
        self.log.info(f"step {progress.step}: {format_scores(scores)}"
                      f"{' (best so far)' if progress.best_step == progress.step else ''}")
        if self.writer is not None:
            self.writer.add_eval(progress.step, scores)
        if self.accelerator.is_main_process:
            folder = checkpoints.save_checkpoint(self.root, self.unwrapped, self.optimizer,
                                                 self.scheduler, self.stepper.scaler, progress)
            self.journal.mark_done(checkpoints.unit_name(progress.step), self.params,
                                   files=checkpoints.checkpoint_files(folder),
                                   extra={self.metric: round(value, 3)})
            checkpoints.prune(self.root, {progress.step, progress.best_step or progress.step})
        self.accelerator.wait_for_everyone()

    def _share_decision(self, progress: Progress) -> None:
        """Under DDP the first process's best step and early-stopping decision are every
        process's: ranks that disagreed would stop at different steps and hang in the next
        all-reduce."""
        if self.accelerator.num_processes == 1:
            return
        from accelerate.utils import broadcast_object_list

        decision = [(progress.best_step, progress.best_metric, progress.evals_without_improvement,
                     progress.stopped_early)]
        broadcast_object_list(decision, from_process=0)
        (progress.best_step, progress.best_metric, progress.evals_without_improvement,
         progress.stopped_early) = decision[0]

    # ---- the run ------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        baseline = self.baseline()
        progress = self.resume()
        if self.accelerator.is_main_process:
            self.writer = CurveWriter(self.options.output, progress.step)
        self.model.train()
        if progress.step == 0 and self.writer is not None:
            self.writer.add_eval(0, baseline)
        self.log.info(self.plan.describe())
        done_already = progress.stopped_early or progress.step >= self.options.max_steps
        from tqdm import tqdm

        bar = tqdm(total=self.options.max_steps, initial=progress.step, desc="finetune",
                   unit="step", disable=done_already or not self.accelerator.is_main_process)
        while not done_already:
            started = time.monotonic()
            loss, self.plan = run_with_oom_fallback(
                functools.partial(self._run_step, self._samples_of_step(progress.step)),
                self.plan, self.stepper.discard, self.log)
            progress.step += 1
            progress.per_device_batch = self.plan.per_device_batch
            lr = self.scheduler.get_last_lr()[0]
            entry = {"step": progress.step, "loss": round(loss, 5), "lr": lr,
                     "seconds": round(time.monotonic() - started, 3)}
            progress.train_log.append(entry)
            self.log.debug(f"step {progress.step}: loss {loss:.4f}, lr {lr:.2e}, {entry['seconds']} s")
            if self.writer is not None:
                self.writer.add_train(progress.step, loss, lr)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
            at_end = progress.step >= self.options.max_steps
            if at_end or progress.step % self.options.eval_steps == 0:
                self._checkpoint(progress)
                if progress.stopped_early and not at_end:
                    self.log.info(f"early stopping: {self.options.patience} evaluations without "
                                  f"a better {self.metric}")
            done_already = at_end or progress.stopped_early
        bar.close()
        if self.writer is not None:
            self.writer.close()
        return self._result(progress, baseline)

    def _result(self, progress: Progress, baseline: Scores) -> TrainResult:
        best_folder = (checkpoints.checkpoint_dir(self.root, progress.best_step)
                       if progress.best_step is not None else None)
        best = next((Scores(**{k: e[k] for k in ("wer", "normalized_wer", "cer", "samples")})
                     for e in progress.evals if e["step"] == progress.best_step), None)
        return TrainResult(progress, baseline, best, best_folder, self.plan)

    def final_model(self, result: TrainResult) -> Any:
        """The best checkpoint's weights in a plain Whisper model (LoRA merged), on CPU, fp32."""
        if result.best_checkpoint is not None:
            checkpoints.load_weights(self.unwrapped, result.best_checkpoint)
        model = self.unwrapped
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        if self.plan.gradient_checkpointing:
            model.gradient_checkpointing_disable()
            model.config.use_cache = True
        return model.to("cpu", dtype=torch.float32)


def record_evaluation(progress: Progress, value: float, patience: int) -> None:
    """Update best step and the early-stopping count with one evaluation (lower is better)."""
    if progress.best_metric is None or value < progress.best_metric:
        progress.best_metric, progress.best_step = value, progress.step
        progress.evals_without_improvement = 0
    else:
        progress.evals_without_improvement += 1
    progress.stopped_early = progress.evals_without_improvement >= patience


def format_scores(scores: Scores) -> str:
    return (f"WER {scores.wer:.1f}, normalised WER {scores.normalized_wer:.1f}, "
            f"CER {scores.cer:.1f} on {scores.samples} input(s)")


def step_seconds_summary(progress: Progress) -> float:
    """Median seconds per step of this run's logged steps (NaN if none)."""
    seconds = [e["seconds"] for e in progress.train_log]
    return float(np.median(seconds)) if seconds else math.nan
