"""LoRA adapters (peft) for Whisper: the trainer and the memory planner build the same ones.

Adapters on the attention query and value projections at rank 32 train about
1 % of whisper-medium's weights: gradients and optimizer state shrink by two
orders of magnitude, activations do not (every layer still runs forward and
backward), which is why the planner simulates them instead of assuming.
"""

from __future__ import annotations

from typing import Any

from whcore.errors import UserError

LORA_RANK = 32  # adapter rank: ~1 % of whisper-medium's parameters
LORA_TARGETS = ("q_proj", "v_proj")  # attention projections that get adapters


def apply_lora(model: Any) -> Any:
    """Wrap ``model`` with LoRA adapters on the attention projections (peft)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise UserError("--lora needs peft: pip install 'whisper-harvest[lora]'") from None
    config = LoraConfig(r=LORA_RANK, lora_alpha=2 * LORA_RANK, lora_dropout=0.05,
                        target_modules=list(LORA_TARGETS), bias="none")
    return get_peft_model(model, config)
