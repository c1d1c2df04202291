"""Weights in the dtype training needs, whatever dtype the checkpoint was stored in.

transformers 5 loads a checkpoint in the dtype it was saved in
(``dtype="auto"``): openai/whisper-large-v3 and large-v3-turbo are stored in
float16. Updating float16 weights directly breaks training: AdamW's
``eps=1e-8`` rounds to 0 in float16 (a parameter whose gradient is 0 becomes
0/0 = NaN after one step), updates smaller than the weight's float16 spacing
vanish, and the float16 gradient scaler refuses float16 gradients. So:

* a full fine-tune holds **fp32 master weights**; autocast runs the matrix
  products in fp16/bf16 and the optimizer updates fp32;
* under LoRA the frozen base is held in the autocast precision (half the
  memory of fp32: that is where LoRA saves memory) and only the adapters,
  the weights the optimizer updates, are fp32 (peft makes them fp32 from a
  half-precision base).

The planner's memory model (``finetune.memory.StepSpec.base_dtype``) follows
the same rule.
"""

from __future__ import annotations

from typing import Any

import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def cast_base_for_training(model: Any, base_dtype: str) -> Any:
    """``model`` with every floating-point weight in ``base_dtype`` (before adapters are added)."""
    return model.to(DTYPES[base_dtype])


def check_trainable_fp32(model: Any) -> None:
    """RuntimeError if any weight the optimizer will update is not fp32 (a bug, not user input)."""
    wrong = [name for name, p in model.named_parameters() if p.requires_grad and p.dtype != torch.float32]
    if wrong:
        raise RuntimeError(f"trainable weights must be fp32 master weights; {wrong[0]} is "
                           f"{dict(model.named_parameters())[wrong[0]].dtype}")


def dtype_name(model: Any) -> str:
    """The dtype of the model's weights, as config.json states it (``float32``, ``float16``...)."""
    return str(next(model.parameters()).dtype).removeprefix("torch.")
