"""The options of one fine-tuning run, as one frozen object.

Functions take this object instead of fifteen keyword arguments, and the
fields that shape the trained weights form the journal's params digest, so a
rerun with other settings never resumes a checkpoint made with these.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "openai/whisper-small"
DEFAULT_EFFECTIVE_BATCH = 16  # samples per optimizer step, across devices and accumulation
DEFAULT_LEARNING_RATE = 1e-5  # the Hugging Face fine-tuning guide's value for whisper-small
MAX_INPUT_SECONDS = 30.0  # Whisper's encoder always sees 30 s
OPTIMIZERS = ("adamw", "adamw_8bit", "adafactor")  # adamw_8bit: bitsandbytes' 8-bit AdamW


@dataclass(frozen=True)
class FinetuneOptions:
    """Everything a fine-tuning run was asked to do."""

    dataset: Path  # Parquet dataset folder, audiofolder folder or CSV file
    output: Path  # where the model, its CT2 copy, card and curves go
    checkpoints: Path  # where resumable checkpoints go (inside the workspace)
    model: str = DEFAULT_MODEL  # model SPEC (whcore.models)
    language: str | None = None  # Whisper code; None = the dataset's language column, else "en"
    task: str = "transcribe"
    max_steps: int = 1000  # optimizer steps
    eval_steps: int = 100  # evaluate + checkpoint every this many steps (and at the end)
    patience: int = 3  # evaluations without improvement before stopping early
    learning_rate: float = DEFAULT_LEARNING_RATE
    warmup_steps: int = 50  # linear warm-up, capped at a tenth of max_steps
    effective_batch: int = DEFAULT_EFFECTIVE_BATCH
    vram_gb: float | None = None  # None = read from the GPU
    batch_size: int | None = None  # per-device batch override (else from the preset)
    lora: bool = False
    optimizer: str | None = None  # None = the planner's choice (finetune.planner)
    pack: bool = True
    seed: int = 42
    ct2_quantization: str = "int8"
    push_to_hub: str | None = None
    cpu: bool = False  # force CPU even when CUDA is there
    resume: bool = False  # insist on resuming (error if no checkpoint is recorded)

    def training_params(self, dataset_digest: str, language: str, model_identity: str) -> dict[str, Any]:
        """What shapes the weights: a change means a fresh run, not a resume.

        ``model_identity`` is the base model's content fingerprint, so a base
        folder retrained in place (the self-training loop) trains afresh.
        """
        return ({
            "model": self.model, "model_fingerprint": model_identity, "dataset": dataset_digest, "language": language, "task": self.task,
            "max_steps": self.max_steps, "eval_steps": self.eval_steps, "patience": self.patience,
            "learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps,
            "effective_batch": self.effective_batch, "lora": self.lora, "pack": self.pack,
            "seed": self.seed,
        })
