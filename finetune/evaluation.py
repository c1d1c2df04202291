"""Evaluate a model on the test split: greedy transcription, then WER/CER.

Greedy decoding (one beam) is what the zero-shot baseline and every later
evaluation use, so the numbers compare like with like and an evaluation on
CPU stays affordable.
"""

from __future__ import annotations

from typing import Any

import torch

from finetune.features import Featurizer
from finetune.metrics import Scores, score
from finetune.packing import Pack


@torch.no_grad()
def transcribe_packs(model: Any, featurizer: Featurizer, packs: list[Pack], *, language: str,
                     task: str, batch_size: int, device: torch.device,
                     dtype: torch.dtype = torch.float32) -> list[str]:
    """Greedy transcripts of ``packs``, in order."""
    was_training = model.training
    model.eval()
    texts: list[str] = []
    try:
        for first in range(0, len(packs), batch_size):
            chunk = packs[first:first + batch_size]
            features = featurizer.input_features(chunk).to(device=device, dtype=dtype)
            generated = model.generate(input_features=features, **featurizer.prompt(language, task),
                                       num_beams=1, do_sample=False, use_cache=True)
            texts.extend(t.strip() for t in
                         featurizer.tokenizer.batch_decode(generated, skip_special_tokens=True))
    finally:
        model.train(was_training)
    return texts


def evaluate(model: Any, featurizer: Featurizer, packs: list[Pack], *, language: str, task: str,
             batch_size: int, device: torch.device, dtype: torch.dtype = torch.float32) -> Scores:
    """Scores of ``model`` on ``packs`` (the test split)."""
    hypotheses = transcribe_packs(model, featurizer, packs, language=language, task=task,
                                  batch_size=batch_size, device=device, dtype=dtype)
    return score([p.text(language) for p in packs], hypotheses, language)
