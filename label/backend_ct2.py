"""Whisper inference on CTranslate2, the engine behind faster-whisper.

CTranslate2 int8 was the fastest engine measured on CPU here (see
``bench/label.py``). faster-whisper supplies the pieces around it (log-mel
features, tokenizer); the batching, prompts and scores are done here so one
encoder pass serves language detection, decoding and word alignment. On CPUs
with AMX-BF16 that encoder pass runs in PyTorch bfloat16 instead
(``label/encoder_torch.py``); on CPU every CTranslate2 call is shared out to
single-threaded workers (``Ct2Engine._parallel``).
"""

from __future__ import annotations

import hashlib
import math
import shutil
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer

from label.encoder_torch import TorchEncoder, resolve_encoder
from whcore.ct2_convert import read_ct2_variables
from whcore.model_cache import build_lock, cache_dir
from whcore.publish import publish_folder
from whcore.records import SAMPLE_RATE

N_FRAMES = 3000  # log-mel frames in Whisper's 30 s input
FRAMES_PER_SECOND = 100  # log-mel frames per second
ENCODER_FRAMES_PER_SECOND = 50  # encoder positions per second (time step of word alignment)
CHUNK_SECONDS = 30.0  # what the encoder always sees
MEDIAN_FILTER_WIDTH = 7  # smoothing of the cross-attention alignment, as in openai/whisper
CT2_BINARY_VERSION = 6  # model.bin layout written by ctranslate2 4.x
CT2_DTYPE_IDS = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3}
INT8_COPY_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")


@dataclass(frozen=True)
class EngineOptions:
    """How the model runs; none of these change which text a window gets, except beam_size,
    compute_type and encoder (they round differently)."""

    model_dir: Path  # CTranslate2 Whisper folder
    device: str = "cpu"  # "cpu", "cuda" or "auto"
    device_index: int = 0
    compute_type: str = "int8"  # CTranslate2 quantisation (int8, int8_float16, float16, float32)
    cpu_threads: int = 2
    batch_size: int = 8  # 30 s inputs per encoder/decoder call
    beam_size: int = 1  # 1 = greedy (fastest); larger = beam search
    task: str = "transcribe"
    encoder: str = "auto"  # "ctranslate2", "torch-bf16" or "auto" (label/encoder_torch.py)


@dataclass(frozen=True)
class Decoded:
    """One decoded 30 s input."""

    tokens: list[int]  # text tokens (no specials)
    text: str
    avg_logprob: float  # sum of token log-probs / (tokens + 1), as Whisper computes it
    no_speech_prob: float  # probability of <|nospeech|> at the first step
    language: str  # detected language of this input
    language_prob: float


@dataclass(frozen=True)
class Word:
    """A word with its time in the input (seconds) and its tokens' log-probabilities."""

    text: str  # with its leading space, as the tokenizer spells it
    start: float
    end: float
    token_logprobs: tuple[float, ...]


class Ct2Engine:
    """A loaded Whisper model plus the batched calls the labeller needs."""

    def __init__(self, options: EngineOptions, load_dir: Path | None = None) -> None:
        """``load_dir``: load the weights of that folder as they are, instead of ``model_dir``
        (or its int8 copy on CPU); the tests compare a float model with its int8 copy so."""
        self.options = options
        model_dir = load_dir or options.model_dir
        if load_dir is None and options.device == "cpu" and options.compute_type == "int8":
            model_dir = int8_model_dir(model_dir)
        self.loaded_from = model_dir  # the folder whose weights are in memory
        # On CPU: one single-threaded CTranslate2 worker per thread, each decoding its share of
        # a batch (see _parallel); on a GPU one worker.
        self.workers = max(1, options.cpu_threads) if options.device == "cpu" else 1
        self._fw = WhisperModel(str(model_dir), device=options.device,
                                device_index=options.device_index,
                                compute_type=options.compute_type,
                                cpu_threads=1 if self.workers > 1 else options.cpu_threads,
                                num_workers=self.workers)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ct2") if self.workers > 1 else None
        self.model: ctranslate2.models.Whisper = self._fw.model
        self._tokenizers: dict[str, Tokenizer] = {}
        self.encoder = resolve_encoder(options.encoder, options.device)
        self._torch_encoder = TorchEncoder(options.model_dir, options.cpu_threads) \
            if self.encoder == "torch-bf16" else None

    @property
    def faster_whisper_model(self) -> WhisperModel:
        """The faster-whisper wrapper around the same weights (bench/label.py's baseline uses it)."""
        return self._fw

    @property
    def languages(self) -> list[str]:
        return list(self._fw.supported_languages)

    def tokenizer(self, language: str) -> Tokenizer:
        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(self._fw.hf_tokenizer, self.model.is_multilingual,
                                                   task=self.options.task, language=language)
        return self._tokenizers[language]

    def features(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel of up to 30 s of audio, zero-padded to 3000 frames like faster-whisper."""
        mel = self._fw.feature_extractor(audio[: int(CHUNK_SECONDS * SAMPLE_RATE)])[..., :-1]
        return pad_or_trim(mel, N_FRAMES)

    def encode(self, audios: Sequence[np.ndarray]) -> ctranslate2.StorageView:
        batch = np.ascontiguousarray(np.stack([self.features(a) for a in audios]), dtype=np.float32)
        if self._torch_encoder is not None:
            return ctranslate2.StorageView.from_array(np.ascontiguousarray(self._torch_encoder(batch)))
        if self._pool is None:
            return self._fw.encode(batch)
        parts = self._parallel(lambda part, rows: [np.asarray(self.model.encode(part))],
                               ctranslate2.StorageView.from_array(batch))
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(parts)))

    def _parallel(self, call: Callable[[ctranslate2.StorageView, list[int]], list],
                  batch: ctranslate2.StorageView) -> list:
        """``call(part, rows)`` on the workers' shares of ``batch``'s rows, all at once; the
        results concatenated in row order.

        Greedy decoding is a chain of small matrix-vector products that one thread's memory
        traffic nearly saturates: on 2 cores, two single-threaded workers each decoding half
        of a batch took 2.52 s wall where one two-threaded call took 4.64 s (8 chunks of
        whisper-base, Spanish), and 26 % less CPU time. CTranslate2 releases the GIL while
        a worker runs, so plain threads submit the shares.
        """
        count = batch.shape[0]
        if self._pool is None or count < 2:
            return call(batch, list(range(count)))
        array = np.asarray(batch)
        shares = np.array_split(np.arange(count), min(self.workers, count))
        inputs = [np.ascontiguousarray(array[rows]) for rows in shares]  # alive until the calls return
        futures = [self._pool.submit(call, ctranslate2.StorageView.from_array(part), rows.tolist())
                   for part, rows in zip(inputs, shares)]
        return [item for future in futures for item in future.result()]

    def detect_language(self, encoded: ctranslate2.StorageView) -> list[tuple[str, float]]:
        """Most likely language of each input and its probability."""
        if not self.model.is_multilingual:
            return [("en", 1.0)] * encoded.shape[0]
        results = self._parallel(lambda part, rows: self.model.detect_language(part), encoded)
        return [(pairs[0][0][2:-2], float(pairs[0][1])) for pairs in results]

    def language_probs(self, encoded: ctranslate2.StorageView) -> list[dict[str, float]]:
        """Full language distribution of each input (code -> probability)."""
        results = self._parallel(lambda part, rows: self.model.detect_language(part), encoded)
        return [{token[2:-2]: float(p) for token, p in pairs} for pairs in results]

    def language_probs_of(self, audios: Sequence[np.ndarray]) -> list[dict[str, float]]:
        """Language distribution of each audio (one encoder pass)."""
        return self.language_probs(self.encode(audios))

    def decode(self, encoded: ctranslate2.StorageView, language: str,
               detected: Sequence[tuple[str, float]], beam_size: int | None = None) -> list[Decoded]:
        """Greedy (or beam) decoding without timestamps, in ``language``; ``beam_size``
        overrides the options' for this call (same loaded model)."""
        tokenizer = self.tokenizer(language)
        prompt = self._fw.get_prompt(tokenizer, previous_tokens=[], without_timestamps=True)
        results = self._parallel(lambda part, rows: self.model.generate(
            part, [list(prompt) for _ in rows],
            beam_size=beam_size or self.options.beam_size, max_length=self._fw.max_length,
            suppress_blank=True, suppress_tokens=[-1], return_scores=True,
            return_no_speech_prob=True), encoded)
        decoded = []
        for result, (lang, lang_prob) in zip(results, detected):
            tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
            cum_logprob = result.scores[0] * len(result.sequences_ids[0])
            decoded.append(Decoded(tokens=tokens, text=tokenizer.decode(tokens).strip(),
                                   avg_logprob=cum_logprob / (len(result.sequences_ids[0]) + 1),
                                   no_speech_prob=float(result.no_speech_prob),
                                   language=lang, language_prob=lang_prob))
        return decoded

    def align_words(self, encoded: ctranslate2.StorageView, language: str,
                    token_lists: Sequence[list[int]], num_frames: Sequence[int]) -> list[list[Word]]:
        """Word times from the cross-attention alignment heads (DTW), one list per input."""
        tokenizer = self.tokenizer(language)
        words: list[list[Word]] = [[] for _ in token_lists]
        todo = [i for i, tokens in enumerate(token_lists) if tokens]
        if not todo:
            return words
        subset = encoded if len(todo) == len(token_lists) else _take(encoded, todo)
        results = self._parallel(lambda part, rows: self.model.align(
            part, tokenizer.sot_sequence, [token_lists[todo[r]] for r in rows], [num_frames[todo[r]] for r in rows],
            median_filter_width=MEDIAN_FILTER_WIDTH), subset)
        for i, result in zip(todo, results):
            words[i] = _words_from_alignment(tokenizer, token_lists[i], result)
        return words


def _take(encoded: ctranslate2.StorageView, rows: list[int]) -> ctranslate2.StorageView:
    """Rows of an encoder output (alignment needs only the inputs that have text)."""
    array = np.asarray(encoded.to_device(ctranslate2.Device.cpu)) if encoded.device != "cpu" \
        else np.asarray(encoded)
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(array[rows]))


def _words_from_alignment(tokenizer: Tokenizer, tokens: list[int], result) -> list[Word]:  # noqa: ANN001
    """Group token-level alignment into words (the method of openai/whisper timing.py)."""
    text_indices = np.array([pair[0] for pair in result.alignments])
    time_indices = np.array([pair[1] for pair in result.alignments])
    token_probs = result.text_token_probs
    word_texts, word_tokens = tokenizer.split_to_word_tokens(tokens + [tokenizer.eot])
    if len(word_tokens) <= 1 or len(text_indices) == 0:
        return []
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = time_indices[jumps] / ENCODER_FRAMES_PER_SECOND
    words = []
    for k, text in enumerate(word_texts[:-1]):
        first, last = int(boundaries[k]), int(boundaries[k + 1])
        if first >= len(jump_times) or last >= len(jump_times) or not text:
            continue
        logprobs = tuple(math.log(max(float(p), 1e-10)) for p in token_probs[first:last])
        start, end = float(jump_times[first]), float(jump_times[last])
        if words and not text[0].isspace() and all(not c.isalnum() for c in text):
            # trailing punctuation belongs to the word before it (and to that word's window)
            prev = words[-1]
            words[-1] = Word(prev.text + text, prev.start, prev.end, prev.token_logprobs + logprobs)
            continue
        words.append(Word(text=text, start=start, end=end, token_logprobs=logprobs))
    return words


def int8_model_dir(model_dir: Path) -> Path:
    """A copy of a float16/float32 CTranslate2 model with its weights already in int8,
    made once in the model cache; the model itself if it is already int8.

    CTranslate2 quantises float weights to int8 on every load with the same rule
    (per-row absmax scale, round half to even), which costs about as long as
    faster-whisper's whole import on 2 cores; stored int8 weights load in half the
    time and give bit-identical results (checked in ``tests/test_label_speed.py``).
    """
    model_bin = model_dir / "model.bin"
    if not model_bin.is_file() or not _has_float_matrices(model_bin):
        return model_dir  # not a local CTranslate2 folder (the loader reports it), or int8 already
    stat = model_bin.stat()
    key = hashlib.sha256(f"{model_bin.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_dir() / f"ct2-int8-{key}"
    if (target / "model.bin").is_file():
        return target
    with build_lock(target):
        if (target / "model.bin").is_file():
            return target
        variables = read_ct2_variables(model_bin)  # float32, int8 weights dequantised
        with publish_folder(target, {"made_from": key, "quantization": "int8"}) as tmp:
            for name in INT8_COPY_FILES:
                if (model_dir / name).is_file():
                    shutil.copy2(model_dir / name, tmp / name)
            with open(tmp / "model.bin", "wb") as handle:
                _write_int8_model(handle, variables)
    return target


def _has_float_matrices(model_bin: Path) -> bool:
    """Whether a ``model.bin`` stores its weight matrices as floats (read from the variable
    headers only; the data is skipped)."""
    int8_id = 1
    with open(model_bin, "rb") as handle:
        try:
            handle.read(4)  # binary version
            handle.read(struct.unpack("<H", handle.read(2))[0])  # spec name
            handle.read(4)  # spec revision
            for _ in range(struct.unpack("<I", handle.read(4))[0]):
                name = handle.read(struct.unpack("<H", handle.read(2))[0])
                rank = struct.unpack("<B", handle.read(1))[0]
                handle.read(4 * rank)
                dtype, size = struct.unpack("<BI", handle.read(5))
                if name.endswith(b"/weight\0") and rank == 2:
                    return dtype != int8_id
                handle.seek(size, 1)
        except struct.error:
            return False  # truncated or not CTranslate2: load it as it is and let CTranslate2 say why
    return False


def quantize_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CTranslate2's int8 rule: per output row, scale = 127 / max|w|, round half to even."""
    rows = weight.reshape(weight.shape[0], -1).astype(np.float32)
    amax = np.abs(rows).max(axis=1)
    amax[amax == 0] = 127.0
    scale = (np.float32(127.0) / amax).astype(np.float32)
    quantized = np.rint(rows * scale[:, None]).astype(np.int8).reshape(weight.shape)
    return quantized, scale


def _write_int8_model(handle: BinaryIO, variables: dict[str, np.ndarray]) -> None:
    """A Whisper ``model.bin`` whose weight matrices (linear layers, embeddings) are int8
    with a ``weight_scale`` per row and whose other floats are float32; a variable that is
    the same array as an earlier one is written as an alias, as CTranslate2 does.

    The convolution weights stay float: CTranslate2 keeps them float when it quantises
    a float model on load, and an int8 conv changes the encoder output."""
    seen: dict[int, str] = {}
    arrays: list[tuple[str, np.ndarray]] = []
    aliases: list[tuple[str, str]] = []
    for name in sorted(variables):
        array = variables[name]
        if id(array) in seen:
            aliases.append((name, seen[id(array)]))
            continue
        seen[id(array)] = name
        if name.endswith("/weight") and array.ndim == 2:
            quantized, scale = quantize_rows(array)
            arrays += [(name, quantized), (f"{name}_scale", scale)]
        else:
            arrays.append((name, array.astype(np.float32) if array.dtype.kind == "f" else array))
    handle.write(struct.pack("<I", CT2_BINARY_VERSION))
    _write_string(handle, "WhisperSpec")
    handle.write(struct.pack("<I", 3))  # spec revision
    handle.write(struct.pack("<I", len(arrays)))
    for name, array in sorted(arrays):
        _write_string(handle, name)
        handle.write(struct.pack("<B", array.ndim))
        handle.write(struct.pack(f"<{array.ndim}I", *array.shape))
        data = np.ascontiguousarray(array).tobytes()
        handle.write(struct.pack("<BI", CT2_DTYPE_IDS[array.dtype], len(data)))
        handle.write(data)
    handle.write(struct.pack("<I", len(aliases)))
    for alias, target in aliases:
        _write_string(handle, alias)
        _write_string(handle, target)


def _write_string(handle: BinaryIO, text: str) -> None:
    data = text.encode("utf-8") + b"\0"
    handle.write(struct.pack("<H", len(data)))
    handle.write(data)
