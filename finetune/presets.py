"""Fit the GPU: per-device batch, accumulation, precision, optimizer, LoRA.

The seed run (RTX 3070 Laptop, batch 8 x accumulation 2, fp32 AdamW states)
spilled into shared memory and ran at 47 s/step. The presets keep activations
small (packed 30 s inputs, gradient checkpointing, fp16/bf16 autocast) and
optimizer state small (bitsandbytes 8-bit AdamW, else Adafactor's factored
moments), then spend what is left on batch. The table is for a whisper-small
sized model (~242 M parameters); other sizes scale the batch by parameter
count, and medium/large models on small GPUs train LoRA adapters instead.
``bench/finetune_memory.py`` measures the real peaks per preset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

# VRAM (GiB) -> per-device batch of 30 s inputs for a whisper-small sized model.
VRAM_PRESETS_GB = {4: 2, 6: 4, 8: 8, 12: 16, 16: 16, 24: 32}
REFERENCE_PARAMS = 242_000_000  # whisper-small
LORA_MIN_PARAMS = 700_000_000  # whisper-medium and larger
LORA_MAX_VRAM_GB = 12  # above this, full fine-tuning of medium fits with the presets
CPU_BATCH = 2  # CPU memory is not the limit, step time is: small micro-batches
VRAM_SLACK_GB = 0.6  # an "8 GB" card reports ~7.6 GiB; count it as 8


@dataclass(frozen=True)
class TrainingPlan:
    """How one optimizer step is executed on this machine."""

    device: str  # "cuda" or "cpu"
    effective_batch: int  # samples per optimizer step, all processes together
    vram_gb: float | None  # the preset's memory (None on CPU)
    per_device_batch: int  # inputs per forward/backward
    grad_accumulation: int  # micro-batches per optimizer step
    num_processes: int  # data-parallel processes (accelerate launch)
    precision: str  # "fp16", "bf16" or "fp32"
    gradient_checkpointing: bool
    optimizer: str  # "adamw_8bit", "adafactor" or "adamw"
    lora: bool

    def describe(self) -> str:
        memory = f"{self.vram_gb:g} GB preset" if self.vram_gb else "no GPU"
        return (f"plan: {self.device} ({memory}), batch {self.per_device_batch} x accumulation "
                f"{self.grad_accumulation} x {self.num_processes} process(es), effective batch "
                f"{self.effective_batch}, {self.precision}, gradient checkpointing "
                f"{'on' if self.gradient_checkpointing else 'off'}, optimizer {self.optimizer}, "
                f"{'LoRA adapters' if self.lora else 'full fine-tune'}")


def preset_batch(vram_gb: float, model_params: int) -> int:
    """Per-device batch for ``vram_gb`` of GPU memory and a model of ``model_params``."""
    keys = [k for k in sorted(VRAM_PRESETS_GB) if k <= vram_gb + VRAM_SLACK_GB]
    base = VRAM_PRESETS_GB[keys[-1]] if keys else 1
    scale = REFERENCE_PARAMS / max(model_params, 1)
    return max(1, int(base * min(scale, 4.0)))


def make_plan(*, effective_batch: int, model_params: int, cuda: bool, vram_gb: float | None,
              bf16_supported: bool, bnb_available: bool, num_processes: int = 1,
              lora: bool = False, batch_override: int | None = None) -> TrainingPlan:
    """The plan for this machine. ``effective_batch`` is kept whatever the per-device batch."""
    if not cuda:
        per_device = min(batch_override or CPU_BATCH, effective_batch)
        return TrainingPlan("cpu", effective_batch, None, per_device, math.ceil(effective_batch / per_device),
                            1, "fp32", False, "adamw", lora)
    memory = vram_gb or 8.0
    use_lora = lora or (model_params >= LORA_MIN_PARAMS and memory <= LORA_MAX_VRAM_GB)
    per_process = math.ceil(effective_batch / num_processes)
    per_device = min(batch_override or preset_batch(memory, model_params), per_process)
    accumulation = math.ceil(per_process / per_device)
    return TrainingPlan("cuda", effective_batch, memory, per_device, accumulation, num_processes,
                        "bf16" if bf16_supported else "fp16", True,
                        "adamw_8bit" if bnb_available else "adafactor", use_lora)


def with_batch(plan: TrainingPlan, per_device_batch: int) -> TrainingPlan:
    """The same plan at another per-device batch, accumulation adjusted to keep the effective batch."""
    per_process = math.ceil(plan.effective_batch / plan.num_processes)
    return replace(plan, per_device_batch=per_device_batch,
                   grad_accumulation=math.ceil(per_process / per_device_batch))


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
