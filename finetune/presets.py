"""The training plan: per-device batch, accumulation, precision, checkpointing, optimizer, LoRA.

On a GPU the plan is chosen by ``finetune.planner``, which simulates the
real training step of this model on fake tensors and takes the fastest
configuration that fits the card with a stated margin (it replaced a fixed
table that left most of a big card idle). On the CPU memory is not the
limit, step time is: small fp32 micro-batches, accumulated to the effective
batch. Either way the plan carries the simulated memory estimate, printed
before training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from finetune.memory import GIB, MemoryEstimate, StepSpec, WhisperDims, simulate
from finetune.planner import choose

CPU_BATCH = 2  # CPU memory is not the limit, step time is: small micro-batches
DEFAULT_VRAM_GIB = 8.0  # assumed when a GPU's size cannot be read


@dataclass(frozen=True)
class TrainingPlan:
    """How one optimizer step is executed on this machine."""

    device: str  # "cuda" or "cpu"
    effective_batch: int  # samples per optimizer step, all processes together
    vram_gb: float | None  # GiB the plan was fitted to (None on CPU)
    per_device_batch: int  # inputs per forward/backward
    grad_accumulation: int  # micro-batches per optimizer step
    num_processes: int  # data-parallel processes (accelerate launch)
    precision: str  # "fp16", "bf16" or "fp32"
    gradient_checkpointing: bool
    optimizer: str  # "adamw_8bit", "adafactor" or "adamw"
    lora: bool
    attention: str = "sdpa"  # transformers attention implementation
    memory: MemoryEstimate | None = None  # simulated peak of this plan's step
    reason: str = ""  # why this configuration was chosen

    def describe(self) -> str:
        memory = f"{self.vram_gb:g} GiB card" if self.vram_gb else "no GPU"
        estimate = (f"; simulated peak {self.memory.peak_allocated / GIB:.2f} GiB allocated, "
                    f"{self.memory.total / GIB:.2f} GiB with fixed overheads" if self.memory else "")
        return (f"plan: {self.device} ({memory}), batch {self.per_device_batch} x accumulation "
                f"{self.grad_accumulation} x {self.num_processes} process(es), effective batch "
                f"{self.effective_batch}, {self.precision}, gradient checkpointing "
                f"{'on' if self.gradient_checkpointing else 'off'}, optimizer {self.optimizer}, "
                f"{self.attention} attention, {'LoRA adapters' if self.lora else 'full fine-tune'}{estimate}")

    def step_spec(self, dims: WhisperDims, label_tokens: int) -> StepSpec:
        """The simulated step of this plan."""
        return StepSpec(dims, batch=self.per_device_batch, label_tokens=label_tokens,
                        precision=self.precision, gradient_checkpointing=self.gradient_checkpointing,
                        optimizer=self.optimizer, attention=self.attention, lora=self.lora,
                        accumulation=self.grad_accumulation, device=self.device)


def make_plan(*, effective_batch: int, dims: WhisperDims, cuda: bool, vram_gb: float | None,
              bf16_supported: bool, bnb_available: bool, num_processes: int = 1,
              lora: bool = False, batch_override: int | None = None,
              label_tokens: int = 448) -> TrainingPlan:
    """The plan for this machine. ``effective_batch`` is kept whatever the per-device batch."""
    if not cuda:
        per_device = min(batch_override or CPU_BATCH, effective_batch)
        plan = TrainingPlan("cpu", effective_batch, None, per_device, math.ceil(effective_batch / per_device),
                            1, "fp32", False, "adamw", lora, reason="CPU: small fp32 micro-batches")
        return replace(plan, memory=simulate(plan.step_spec(dims, label_tokens)))
    memory = vram_gb or DEFAULT_VRAM_GIB
    result = choose(dims, memory, effective_batch=effective_batch, num_processes=num_processes,
                    label_tokens=label_tokens, precision="bf16" if bf16_supported else "fp16",
                    bnb_available=bnb_available, lora=lora, batch=batch_override)
    spec = result.chosen.spec
    return TrainingPlan("cuda", effective_batch, memory, spec.batch, spec.accumulation, num_processes,
                        spec.precision, spec.gradient_checkpointing, spec.optimizer, spec.lora,
                        spec.attention, result.chosen.estimate, result.reason())


def with_batch(plan: TrainingPlan, per_device_batch: int) -> TrainingPlan:
    """The same plan at another per-device batch, accumulation adjusted to keep the effective batch."""
    per_process = math.ceil(plan.effective_batch / plan.num_processes)
    return replace(plan, per_device_batch=per_device_batch,
                   grad_accumulation=math.ceil(per_process / per_device_batch), memory=None)


def detect_gpu() -> tuple[bool, float | None, bool]:
    """(cuda available, total GiB of device 0, bf16 supported)."""
    import torch

    if not torch.cuda.is_available():
        return False, None, False
    total = torch.cuda.get_device_properties(0).total_memory / 2**30
    return True, total, bool(torch.cuda.is_bf16_supported())


def bitsandbytes_available() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except Exception:  # broken CUDA setups raise more than ImportError
        return False
    return True
