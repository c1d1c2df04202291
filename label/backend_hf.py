"""Whisper inference on transformers (PyTorch), for ``--backend transformers``.

CTranslate2 is faster on CPU (int8) and on GPU (fp16) for inference, so
``--backend auto`` picks it; this backend exists for models or devices
CTranslate2 cannot run, and as the reference its speed is measured against.
It labels each window alone (``--mode windows``): word timings for the
long-form mode come from CTranslate2's alignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from label.decoding import Confidence, WindowDecode, batches
from whcore.records import SAMPLE_RATE


@dataclass(frozen=True)
class HfOptions:
    spec: str  # model SPEC (offline-base is converted to transformers once and cached)
    device: str = "cpu"
    batch_size: int = 8
    beam_size: int = 1
    task: str = "transcribe"
    cpu_threads: int = 2


class HfEngine:
    """A transformers Whisper model and its batched window decoding."""

    def __init__(self, options: HfOptions) -> None:
        import torch

        from whcore.models import load_hf_whisper

        self.options = options
        if options.device == "cpu":
            torch.set_num_threads(options.cpu_threads)
        self.model, self.processor = load_hf_whisper(options.spec)
        self.model.to(options.device).eval()
        self.tokenizer = self.processor.tokenizer
        vocab = self.tokenizer.get_vocab()
        self.language_tokens = {code: vocab[f"<|{code}|>"] for code in sorted(_language_codes())
                                if f"<|{code}|>" in vocab}
        self.no_speech_id = vocab.get("<|nospeech|>", vocab.get("<|nocaptions|>"))
        self.sot_id = vocab["<|startoftranscript|>"]

    @property
    def languages(self) -> list[str]:
        return sorted(self.language_tokens)

    def decode_windows(self, read: Callable[[Sequence[int]], list[np.ndarray]], count: int, language: str,
                       progress: Callable[[float], None] = lambda seconds: None) -> list[WindowDecode]:
        """Decode ``count`` windows alone; ``read(rows)`` gives one batch's audio at a time."""
        results: list[WindowDecode] = []
        for rows in batches(count, self.options.batch_size):
            batch = read(rows)
            results.extend(self._decode_batch(batch, language))
            progress(sum(len(a) for a in batch) / SAMPLE_RATE)
        return results

    def _features(self, batch: Sequence[np.ndarray]):  # noqa: ANN202 - a torch tensor
        features = self.processor.feature_extractor(list(batch), sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return features.input_features.to(self.options.device, self.model.dtype)

    def _first_step(self, encoded):  # noqa: ANN001, ANN202 - torch tensors
        """Logits of the token after <|startoftranscript|> (language and no-speech live there)."""
        import torch

        start = torch.full((encoded.shape[0], 1), self.sot_id, device=encoded.device)
        return self.model(encoder_outputs=(encoded,), decoder_input_ids=start).logits[:, -1].float()

    def language_probs_of(self, audios: Sequence[np.ndarray]) -> list[dict[str, float]]:
        import torch

        with torch.inference_mode():
            logits = self._first_step(self.model.model.encoder(self._features(audios)).last_hidden_state)
            ids = torch.tensor(list(self.language_tokens.values()), device=logits.device)
            probs = logits[:, ids].softmax(-1)
        return [dict(zip(self.language_tokens, row.tolist())) for row in probs]

    def _decode_batch(self, batch: list[np.ndarray], language: str) -> list[WindowDecode]:
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        with torch.inference_mode():
            encoded = self.model.model.encoder(self._features(batch)).last_hidden_state
            first = self._first_step(encoded)
            probs = first.softmax(-1)
            lang_ids = torch.tensor(list(self.language_tokens.values()), device=encoded.device)
            lang_probs = first[:, lang_ids].softmax(-1)
            out = self.model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=encoded),
                                      language=language, task=self.options.task,
                                      num_beams=self.options.beam_size, do_sample=False,
                                      return_dict_in_generate=True, output_scores=True,
                                      attention_mask=torch.ones(encoded.shape[:2], dtype=torch.long,
                                                                device=encoded.device))
            scores = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        codes = list(self.language_tokens)
        decodes = []
        for i in range(len(batch)):
            tokens = [t for t in out.sequences[i].tolist() if t < self.tokenizer.eos_token_id]
            logprobs = [float(s) for s in scores[i].tolist() if np.isfinite(s)]
            best = int(lang_probs[i].argmax())
            decodes.append(WindowDecode(
                text=self.tokenizer.decode(tokens, skip_special_tokens=True).strip(),
                language=codes[best], language_prob=float(lang_probs[i, best]),
                avg_logprob=sum(logprobs) / (len(logprobs) + 1) if logprobs else -10.0,
                no_speech_prob=float(probs[i, self.no_speech_id]) if self.no_speech_id is not None else 0.0,
                token_count=len(tokens), confidence=token_confidence(logprobs[:len(tokens)])))
        return decodes


def _language_codes() -> set[str]:
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return set(LANGUAGES)


def token_confidence(logprobs: Sequence[float]) -> Confidence:
    """Confidence from token probabilities: without word timings here, each text token
    stands for a word (close for English, where most words are one token)."""
    if not logprobs:
        return Confidence(None, None, 0)
    probs = np.exp(np.asarray(logprobs))
    return Confidence(float(probs.mean()), float(probs.min()), len(probs))
