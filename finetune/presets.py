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

from finetune.depth import simulate_deep
from finetune.memory import GIB, MemoryEstimate, StepSpec, WhisperDims
from finetune.planner import choose
from whcore.device import GpuFacts, attention_kernel, training_precision, uses_grad_scaler

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
    compute_capability: tuple[int, int] | None = None  # the GPU's; None on CPU

    @property
    def grad_scaler(self) -> bool:
        """fp16 autocast scales the loss (torch.amp.GradScaler); bf16 and fp32 do not."""
        return uses_grad_scaler(self.precision)

    @property
    def base_dtype(self) -> str:
        """The dtype the model's weights are held in: fp32 master weights for a full
        fine-tune; under LoRA the frozen base in the autocast precision (its adapters fp32)."""
        return self.precision if self.lora and self.precision in ("fp16", "bf16") else "fp32"

    def state_params(self) -> dict[str, Any]:
        """What of the plan shapes the checkpointed state: a resume under other values starts
        clean. The batch is not in it: accumulation keeps the effective batch whatever it is."""
        return {"precision": self.precision, "optimizer": self.optimizer, "lora": self.lora,
                "gradient_checkpointing": self.gradient_checkpointing}

    def describe(self) -> str:
        memory = f"{self.vram_gb:g} GiB card" if self.vram_gb else "no GPU"
        estimate = (f"; simulated peak {self.memory.peak_allocated / GIB:.2f} GiB allocated, "
                    f"{self.memory.total / GIB:.2f} GiB with fixed overheads" if self.memory else "")
        precision = f"{self.precision} autocast + GradScaler" if self.grad_scaler else self.precision
        kernel = attention_kernel(self.compute_capability if self.device == "cuda" else None, self.precision)
        return (f"plan: {self.device} ({memory}), batch {self.per_device_batch} x accumulation "
                f"{self.grad_accumulation} x {self.num_processes} process(es), effective batch "
                f"{self.effective_batch}, {precision}, {self.base_dtype} weights, gradient checkpointing "
                f"{'on' if self.gradient_checkpointing else 'off'}, optimizer {self.optimizer}, "
                f"{self.attention} attention ({kernel} kernel), "
                f"{'LoRA adapters' if self.lora else 'full fine-tune'}{estimate}")

    def step_spec(self, dims: WhisperDims, label_tokens: int) -> StepSpec:
        """The simulated step of this plan."""
        return StepSpec(dims, batch=self.per_device_batch, label_tokens=label_tokens,
                        precision=self.precision, gradient_checkpointing=self.gradient_checkpointing,
                        optimizer=self.optimizer, attention=self.attention, lora=self.lora,
                        accumulation=self.grad_accumulation, device=self.device)


def make_plan(*, effective_batch: int, dims: WhisperDims, gpu: GpuFacts | None, vram_gb: float | None,
              bnb_available: bool, num_processes: int = 1, lora: bool = False,
              batch_override: int | None = None, optimizer: str | None = None,
              label_tokens: int = 448) -> TrainingPlan:
    """The plan for ``gpu`` (None: the CPU). ``effective_batch`` is kept whatever the per-device
    batch; ``vram_gb`` overrides the card's memory; ``optimizer`` forces one optimizer."""
    if gpu is None:
        per_device = min(batch_override or CPU_BATCH, effective_batch)
        plan = TrainingPlan("cpu", effective_batch, None, per_device, math.ceil(effective_batch / per_device),
                            1, "fp32", False, optimizer or "adamw", lora, reason="CPU: small fp32 micro-batches")
        return replace(plan, memory=simulate_deep(plan.step_spec(dims, label_tokens)))
    memory = vram_gb or gpu.vram_gib or DEFAULT_VRAM_GIB
    result = choose(dims, memory, effective_batch=effective_batch, num_processes=num_processes,
                    label_tokens=label_tokens, precision=training_precision(gpu.compute_capability),
                    bnb_available=bnb_available, lora=lora, batch=batch_override, optimizer=optimizer)
    spec = result.chosen.spec
    return TrainingPlan("cuda", effective_batch, memory, spec.batch, spec.accumulation, num_processes,
                        spec.precision, spec.gradient_checkpointing, spec.optimizer, spec.lora,
                        spec.attention, result.chosen.estimate, result.reason(), gpu.compute_capability)


def with_batch(plan: TrainingPlan, per_device_batch: int) -> TrainingPlan:
    """The same plan at another per-device batch, accumulation adjusted to keep the effective batch."""
    per_process = math.ceil(plan.effective_batch / plan.num_processes)
    return replace(plan, per_device_batch=per_device_batch,
                   grad_accumulation=math.ceil(per_process / per_device_batch), memory=None)


def bitsandbytes_available() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except Exception:  # broken CUDA setups raise more than ImportError
        return False
    return True
