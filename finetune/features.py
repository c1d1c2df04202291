"""From packs to model inputs: log-mel features and decoder labels.

Labels follow the Hugging Face fine-tuning guide: the tokenizer adds the
prefix <|startoftranscript|><|lang|><|task|><|notimestamps|> and
<|endoftext|>; the leading <|startoftranscript|> is cut because the model
prepends it when it shifts the labels right; padding is -100 so the loss
ignores it. English-only models (tiny.en, base.en, ...) have no language or
task tokens: their prefix is <|startoftranscript|><|notimestamps|>, in the
labels, in evaluation and in the exported model alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from finetune.audio import load_audio
from finetune.options import MAX_INPUT_SECONDS
from finetune.packing import Pack, PackList
from whcore.records import SAMPLE_RATE, seconds_to_samples

IGNORE_INDEX = -100  # label value the cross-entropy loss skips
MAX_LABEL_TOKENS = 448  # Whisper's decoder positions
LONGEST_CANDIDATES = 256  # packs with the most text bytes whose labels longest_label tokenizes


class Featurizer:
    """Turns packs into ``input_features`` / ``labels`` tensors for one language and task.

    ``language`` always names the text's language (normalisers, packing);
    ``english_only`` drops the language and task tokens from the prompt.
    """

    def __init__(self, processor: Any, language: str, task: str, log: Any = None,
                 english_only: bool = False) -> None:
        self.processor = processor
        self.language = language
        self.english_only = english_only
        self.tokenizer = processor.tokenizer
        self.tokenizer.set_prefix_tokens(**self.prompt(language, task), predict_timestamps=False)
        self.decoder_start_id = self.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
        self.log = log

    def prompt(self, language: str, task: str) -> dict[str, str | None]:
        """The ``language``/``task`` arguments of the tokenizer and ``generate()``: none for an
        English-only model, whose vocabulary has no such tokens."""
        if self.english_only:
            return {"language": None, "task": None}
        return {"language": language, "task": task}

    def audio(self, pack: Pack) -> np.ndarray:
        """The pack's examples back to back, cut at 30 s."""
        samples = np.concatenate([load_audio(e.audio_path, e.row) for e in pack.examples])
        return samples[: seconds_to_samples(MAX_INPUT_SECONDS)]

    def input_features(self, packs: list[Pack]) -> torch.Tensor:
        audio = [self.audio(pack) for pack in packs]
        return self.processor.feature_extractor(audio, sampling_rate=SAMPLE_RATE,
                                                return_tensors="pt").input_features

    def label_ids(self, text: str) -> list[int]:
        ids = self.tokenizer(text).input_ids
        if ids and ids[0] == self.decoder_start_id:
            ids = ids[1:]
        if len(ids) > MAX_LABEL_TOKENS - 1:
            if self.log is not None:
                self.log.warning(f"label of {len(ids)} tokens cut to {MAX_LABEL_TOKENS - 1}: {text[:60]!r}…")
            ids = ids[: MAX_LABEL_TOKENS - 1]
        return ids

    def longest_label(self, packs: Sequence[Pack]) -> int:
        """Decoder length of the longest label in ``packs`` (what the memory plan sizes for).

        Of a ``PackList`` only the ``LONGEST_CANDIDATES`` packs with the most text bytes
        are tokenized: the corpus' texts are not in memory, and reading and tokenizing
        all of a 10,000 h corpus' to find one number would take longer than a step.
        """
        if isinstance(packs, PackList) and len(packs) > LONGEST_CANDIDATES:
            candidates = np.argsort(packs.text_bytes(), kind="stable")[-LONGEST_CANDIDATES:]
            packs = [packs[int(i)] for i in candidates]
        longest = max((len(self.tokenizer(pack.text(self.language)).input_ids) - 1 for pack in packs), default=1)
        return max(1, min(longest, MAX_LABEL_TOKENS))

    def labels(self, packs: list[Pack]) -> torch.Tensor:
        rows = [self.label_ids(pack.text(self.language)) for pack in packs]
        width = max(len(r) for r in rows)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        for i, row in enumerate(rows):
            labels[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return labels

    def batch(self, packs: list[Pack]) -> dict[str, torch.Tensor]:
        return {"input_features": self.input_features(packs), "labels": self.labels(packs)}
