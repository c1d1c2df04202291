"""CUDA out-of-memory fallback: halve the batch, double the accumulation, retry the step.

A preset is a guess about a GPU we have not seen (other programs hold memory,
drivers differ). Instead of dying, the step that ran out of memory is thrown
away (gradients zeroed, cache freed) and run again on the same samples with
half the per-device batch and twice the accumulation, so the effective batch,
the step number and the data order stay what they were. Below batch 1 there
is nothing left to halve and the run stops with advice.

Under DDP (several processes) the fallback is refused: the error is raised
on one rank only, and a rank that retried at half the batch would run more
backward passes than the others, which would wait in the gradient
all-reduce for ever. That rank stops with the batch to pass instead, and
the launcher (``accelerate launch``/``torchrun``) ends the other ranks; a
rerun resumes from the last checkpoint.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from finetune.presets import TrainingPlan, with_batch
from finetune.step import is_out_of_memory
from whcore.errors import UserError

T = TypeVar("T")


def halved(plan: TrainingPlan) -> TrainingPlan:
    """The plan after one out-of-memory: half the batch, accumulation doubled."""
    if plan.per_device_batch <= 1:
        advice = "a smaller --model" if plan.lora else "--lora or a smaller --model"
        raise UserError(f"CUDA out of memory even at batch 1: free GPU memory, or rerun with {advice}")
    return with_batch(plan, plan.per_device_batch // 2)


def run_with_oom_fallback(step: Callable[[TrainingPlan], T], plan: TrainingPlan,
                          discard: Callable[[], None], log: Any) -> tuple[T, TrainingPlan]:
    """Run ``step(plan)``; on OOM call ``discard`` and retry with ``halved(plan)``.

    Returns the step's result and the plan it finally ran with, which the
    caller keeps for the following steps (and saves in checkpoints).
    """
    while True:
        try:
            return step(plan), plan
        except Exception as error:  # noqa: BLE001 - re-raised unless it is an OOM
            if not is_out_of_memory(error):
                raise
            discard()
            smaller = halved(plan)
            if plan.num_processes > 1:
                raise UserError(
                    f"CUDA out of memory at batch {plan.per_device_batch} on one of {plan.num_processes} "
                    f"DDP processes; a per-rank fallback would hang the others, so the run stops: "
                    f"rerun with --batch-size {smaller.per_device_batch} (it resumes from the last "
                    "checkpoint)") from None
            log.warning(f"CUDA out of memory at batch {plan.per_device_batch}: continuing the "
                        f"same step with batch {smaller.per_device_batch} x accumulation "
                        f"{smaller.grad_accumulation}")
            plan = smaller


def evaluate_with_oom_fallback(evaluate: Callable[[int], T], batch: int, discard: Callable[[], None],
                               log: Any) -> T:
    """Run ``evaluate(batch)``; on OOM call ``discard`` and run it again at half the batch.

    Evaluation changes no weight, so starting it over is always safe; below
    batch 1 the run stops with advice.
    """
    while True:
        try:
            return evaluate(batch)
        except Exception as error:  # noqa: BLE001 - re-raised unless it is an OOM
            if not is_out_of_memory(error):
                raise
            discard()
            if batch <= 1:
                raise UserError("CUDA out of memory evaluating at batch 1: free GPU memory, or rerun "
                                "with --lora or a smaller --model") from None
            batch //= 2
            log.warning(f"CUDA out of memory in evaluation: evaluating again at batch {batch}")
