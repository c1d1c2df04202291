"""One optimizer step with the GPU's numerics, safe to retry after an out-of-memory.

Autocast and the float16 gradient scaler are driven here with ``torch.amp``
rather than through accelerate's ``mixed_precision``: accelerate turns fp16
off on a CPU (no autocast, no scaler), while ``torch.autocast`` and
``torch.amp.GradScaler`` run on both devices. So the suite runs on CPU the
exact fp16 + GradScaler, bf16 and fp32 paths a GPU runs. accelerate still
places the model and wraps it for DDP.

What an out-of-memory in each phase of the step means:

* **forward, backward**: the micro-batch's activations did not fit. The
  step's gradients are thrown away and ``finetune.oom`` runs the same step
  again at half the batch (twice the accumulation).
* **unscale + clip**: gradients are thrown away as above. The scaler records
  per optimizer that it unscaled; that record is reset too, otherwise the
  retry fails with "unscale_() has already been called on this optimizer
  since the last update()" instead of running.
* **optimizer step**: weights, gradients, optimizer state and the
  optimizer's temporaries, none of which a smaller batch changes. An OOM
  there may leave part of the state updated, so the step is not retried:
  ``OptimizerOutOfMemory`` stops the run naming a smaller optimizer, and the
  rerun resumes from the last checkpoint (which never holds a half-applied
  step: checkpoints are written between steps).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any, Callable, ContextManager, Iterable

import torch

from finetune.precision import DTYPES
from whcore.device import uses_grad_scaler
from whcore.errors import UserError

MAX_GRAD_NORM = 1.0
PHASES = ("forward", "backward", "clip", "optimizer")


class OptimizerOutOfMemory(UserError):
    """Out of memory inside ``optimizer.step()``: not retried (the step may be half applied)."""


def is_out_of_memory(error: BaseException) -> bool:
    """True for CUDA (and cuBLAS/cuDNN allocation) out-of-memory errors."""
    if isinstance(error, UserError):
        return False
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def smaller_optimizer_advice(optimizer: str, lora: bool, bnb_available: bool) -> str:
    """The flags that shrink the optimizer step's memory, for the one-line stop."""
    if lora:
        return "a smaller --model, or a GPU with more free memory"
    if optimizer == "adamw":
        return f"--optimizer {'adamw_8bit' if bnb_available else 'adafactor'} (or --lora)"
    return "--lora"


class Stepper:
    """Runs optimizer steps of ``model``: autocast, gradient scaling, clipping, scheduling."""

    def __init__(self, model: Any, optimizer: torch.optim.Optimizer, scheduler: Any, precision: str,
                 device: torch.device, no_sync: Callable[[], ContextManager] | None = None,
                 init_scale: float = 2.0**16, optimizer_oom_advice: str = "--lora") -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.optimizer_oom_advice = optimizer_oom_advice
        self.precision, self.device = precision, device
        self.no_sync = no_sync or contextlib.nullcontext
        self.scaler = torch.amp.GradScaler(device.type, init_scale=init_scale) \
            if uses_grad_scaler(precision) else None
        self.phase = "idle"  # the phase running now, named in errors and checked by tests
        self.skipped_steps = 0  # fp16 steps the scaler skipped for inf/NaN gradients

    @property
    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def autocast(self) -> ContextManager:
        dtype = DTYPES[self.precision]
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32)

    def step(self, micro_batches: Iterable[tuple[dict[str, torch.Tensor], float]]) -> float:
        """One optimizer step over ``(batch, weight)`` micro-batches; returns the weighted loss.

        ``weight`` is the micro-batch's share of the step's samples, so the
        gradient is the mean over the step whatever the per-device batch.
        """
        self.optimizer.zero_grad(set_to_none=True)
        batches = list(micro_batches)
        total = 0.0
        for number, (batch, weight) in enumerate(batches):
            sync = contextlib.nullcontext() if number == len(batches) - 1 else self.no_sync()
            with sync:
                self.phase = "forward"
                with self.autocast():
                    loss = self.model(**batch).loss.float() * weight
                self.phase = "backward"
                (self.scaler.scale(loss) if self.scaler else loss).backward()
            total += float(loss.detach())
            del loss
        self.phase = "clip"
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.parameters, MAX_GRAD_NORM)
        self.phase = "optimizer"
        try:
            applied = self._optimizer_step()
        except Exception as error:  # noqa: BLE001 - re-raised as is unless it is an OOM
            if not is_out_of_memory(error):
                raise
            raise OptimizerOutOfMemory(
                "CUDA out of memory in the optimizer step (weights, gradients and optimizer state: a "
                f"smaller batch does not shrink them); the run stops, rerun with {self.optimizer_oom_advice} "
                "(it resumes from the last checkpoint)") from None
        self.phase = "idle"
        if applied:
            self.scheduler.step()
        else:
            self.skipped_steps += 1
        return total

    def _optimizer_step(self) -> bool:
        """Apply the update; False when the scaler skipped it (inf/NaN gradients)."""
        if self.scaler is None:
            self.optimizer.step()
            return True
        scale = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return self.scaler.get_scale() >= scale  # a skipped step lowers the scale

    def discard(self) -> None:
        """Forget a failed step: gradients, the scaler's per-step record, cached GPU memory."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            from torch.amp.grad_scaler import _refresh_per_optimizer_state

            self.scaler._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)
        self.phase = "idle"
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def scaler_state(self) -> dict | None:
        return self.scaler.state_dict() if self.scaler is not None else None
