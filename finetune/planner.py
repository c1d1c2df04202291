"""Choose how to train on a GPU of N GiB: the fastest configuration whose simulated peak fits.

Candidates are ranked by an explicit speed model and checked by simulation
(``finetune.memory``), fastest first:

* per-device batch as large as fits, up to the effective batch (GPUs are
  under-used at small batches: relative samples/s = b / (b + 1), so batch 1
  runs at half the speed of a saturating batch);
* gradient checkpointing only where no configuration without it fits (it
  recomputes the forward pass in backward: about 30 % more compute);
* AdamW unless no AdamW configuration fits at all; then bitsandbytes' 8-bit
  AdamW (when installed) or Adafactor, whose smaller state changes the
  optimisation a little; then LoRA adapters;
* the effective batch (16 by default) is kept by gradient accumulation.

A configuration fits when its allocated peak plus fixed overheads (CUDA
context, allocator fragmentation) leaves ``MARGIN`` of the card free for
what no simulation sees (other processes, the display, driver versions).
The peak grows almost linearly with the batch, so each (optimizer,
checkpointing) mode is simulated at batch 1 and 2, the largest fitting batch
is predicted from that line, and the prediction is simulated before it is
chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from finetune.depth import simulate_deep
from finetune.memory import GIB, MemoryEstimate, StepSpec, WhisperDims
from whcore.errors import UserError

MARGIN = 0.10  # fraction of the card left free beyond the simulated need
CHECKPOINTING_COST = 0.30  # extra compute of recomputing the forward pass in backward
PREDICTION_SLACK = 0.05  # a batch predicted within 5 % over the budget is simulated, not skipped
BATCH_HALF_SPEED = 1  # per-device batch at which a GPU runs at half its saturated samples/s


@dataclass(frozen=True)
class Choice:
    """One configuration the planner looked at, and what it found."""

    spec: StepSpec
    estimate: MemoryEstimate | None  # None: skipped as surely too big (predicted)
    fits: bool
    note: str  # why it was chosen, rejected or skipped

    @property
    def speed(self) -> float:
        return relative_speed(self.spec)


@dataclass(frozen=True)
class PlanResult:
    """The chosen configuration with the reasoning behind it."""

    chosen: Choice
    considered: tuple[Choice, ...]
    budget_bytes: int
    vram_gib: float

    def reason(self) -> str:
        spec = self.chosen.spec
        return (f"fastest configuration whose simulated need ({self.chosen.estimate.total / GIB:.2f} GiB) "
                f"fits {self.vram_gib:g} GiB with a {MARGIN:.0%} margin ({self.budget_bytes / GIB:.2f} GiB); "
                f"{self.chosen.note}; effective batch {spec.batch * spec.accumulation} by accumulation")


def relative_speed(spec: StepSpec) -> float:
    """Samples/s relative to a saturating batch without checkpointing (the speed model)."""
    speed = spec.batch / (spec.batch + BATCH_HALF_SPEED)
    return speed / (1 + CHECKPOINTING_COST) if spec.gradient_checkpointing else speed


@lru_cache(maxsize=256)
def estimate(spec: StepSpec) -> MemoryEstimate:
    """Cached ``simulate_deep``: the planner asks for the same configuration more than once."""
    return simulate_deep(spec)


def batch_choices(per_process: int) -> list[int]:
    """Per-device batches worth trying: powers of two below the per-process batch, and it."""
    batches = {per_process} | {2**k for k in range(int(math.log2(per_process)) + 1)}
    return sorted((b for b in batches if b <= per_process), reverse=True)


def optimizer_tiers(lora: bool, bnb_available: bool, allow_lora: bool,
                    optimizer: str | None = None) -> list[tuple[str, bool, str]]:
    """(optimizer, LoRA, why) in the order they are tried; ``optimizer`` forces one."""
    if optimizer == "adamw_8bit" and not bnb_available:
        raise UserError("--optimizer adamw_8bit needs bitsandbytes: pip install 'whisper-harvest[train8bit]', "
                        "or pass --optimizer adafactor (also a small optimizer state)")
    if lora:
        return [(optimizer or "adamw", True, "LoRA adapters as asked (--lora)")]
    if optimizer:
        return [(optimizer, False, f"{optimizer} as asked (--optimizer)")]
    small_state = "adamw_8bit" if bnb_available else "adafactor"
    tiers = [("adamw", False, "full fine-tune with AdamW"),
             (small_state, False, f"{small_state}: no AdamW configuration fits")]
    if allow_lora:
        tiers.append(("adamw", True, "LoRA adapters: no full fine-tune fits"))
    return tiers


def choose(dims: WhisperDims, vram_gib: float, *, effective_batch: int = 16, num_processes: int = 1,
           label_tokens: int = 448, precision: str = "fp16", bnb_available: bool = False,
           lora: bool = False, batch: int | None = None, optimizer: str | None = None) -> PlanResult:
    """The fastest configuration of ``dims`` that fits ``vram_gib`` GiB, or a UserError."""
    budget = int(vram_gib * GIB * (1 - MARGIN))
    per_process = max(1, math.ceil(effective_batch / num_processes))
    batches = [min(batch, per_process)] if batch else batch_choices(per_process)
    considered: list[Choice] = []
    for name, use_lora, why in optimizer_tiers(lora, bnb_available, allow_lora=True, optimizer=optimizer):
        fitting = []
        for checkpointing in (False, True):
            base = StepSpec(dims, batch=1, label_tokens=label_tokens, precision=precision,
                            gradient_checkpointing=checkpointing, optimizer=name, lora=use_lora)
            found = _largest_fitting(base, batches, per_process, budget, considered)
            if found is not None:
                fitting.append(replace(found, note=why))
        if fitting:
            best = max(fitting, key=lambda c: (c.speed, c.spec.batch))
            return PlanResult(best, tuple(considered), budget, vram_gib)
    smallest = min((c.estimate.total for c in considered if c.estimate), default=0)
    raise UserError(f"no configuration of this model fits {vram_gib:g} GiB with a {MARGIN:.0%} margin: "
                    f"the smallest simulated needs {smallest / GIB:.2f} GiB; use a smaller --model, "
                    "shorter labels, or a GPU with more memory")


def _largest_fitting(base: StepSpec, batches: list[int], per_process: int, budget: int,
                     considered: list[Choice]) -> Choice | None:
    """The largest batch of ``base``'s mode that fits, predicted from batch 1 and 2, then verified."""

    def check(batch: int) -> Choice:
        spec = replace(base, batch=batch, accumulation=math.ceil(per_process / batch))
        result = estimate(spec)
        fits = result.total <= budget
        choice = Choice(spec, result, fits, "fits" if fits else
                        f"needs {result.total / GIB:.2f} GiB > {budget / GIB:.2f} GiB")
        considered.append(choice)
        return choice

    smallest = min(batches)
    first = check(smallest)
    if not first.fits:
        return None
    larger = [b for b in batches if b > smallest]
    if not larger:
        return first
    second = check(min(larger))
    if not second.fits:
        return first
    slope = (second.estimate.total - first.estimate.total) / max(1, second.spec.batch - first.spec.batch)
    for batch in sorted(larger, reverse=True):  # largest predicted to fit, verified by simulation
        predicted = first.estimate.total + slope * (batch - smallest)
        if batch == second.spec.batch:
            return second
        if predicted > budget * (1 + PREDICTION_SLACK):
            considered.append(Choice(replace(base, batch=batch, accumulation=math.ceil(per_process / batch)),
                                     None, False,
                                     f"predicted {predicted / GIB:.2f} GiB > {budget / GIB:.2f} GiB (not simulated)"))
            continue
        choice = check(batch)
        if choice.fits:
            return choice
    return second


def describe(result: PlanResult) -> list[str]:
    """The planner's table: every configuration considered, fastest first, and the choice."""
    lines = [f"{'configuration':<78}{'needs GiB':>10}{'speed':>7}  verdict"]
    for choice in sorted(result.considered, key=lambda c: -c.speed):
        need = f"{choice.estimate.total / GIB:.2f}" if choice.estimate else "-"
        mark = "CHOSEN" if choice.spec == result.chosen.spec else choice.note
        lines.append(f"{choice.spec.describe():<78}{need:>10}{choice.speed:>7.2f}  {mark}")
    return lines
