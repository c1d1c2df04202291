"""CTranslate2 Whisper ``model.bin`` → transformers ``WhisperForConditionalGeneration``.

The offline weights ship only in CTranslate2 format, and no library converts
that back, so fine-tuning offline needs this module. It reads CTranslate2's
binary format, renames the variables to transformers' names, rebuilds the
config, generation config and processor, and saves a folder that
``WhisperForConditionalGeneration.from_pretrained`` and
``pipeline("automatic-speech-recognition", model=DIR)`` load. At float32 the
result decodes token for token like CTranslate2 (tests/test_models.py checks
it). Pitfalls handled (see the shared README §1): fp16/int8 weights become
fp32; the k projections have no bias in transformers; the output projection
is tied to the token embeddings; multilingual special token ids come from the
tokenizer, not WhisperConfig's English-only defaults; the generation config
needs the language/task tables and ``task`` or generate() degenerates, while
English-only models must not have them (generate() would detect a language and
insert a bogus token); the shipped tokenizer.json does not mark its special
tokens as special, so timestamps would decode 2.12 s late unless they are
registered.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from whcore.errors import UserError
from whcore.publish import publish_folder

if TYPE_CHECKING:  # torch and transformers load lazily: importing them costs seconds
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperProcessor

CONVERTER_VERSION = 1  # bump when the output changes, so cached conversions are redone
CT2_BINARY_VERSION = 6  # model.bin layout version this reader understands
# CTranslate2 dtype codes → numpy; bf16 (5) has no numpy type and is widened by hand.
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.uint16}
BF16_CODE = 5
MULTILINGUAL_MIN_VOCAB = 51865  # openai/whisper: English-only models have 51864 tokens


def is_english_only(vocab_size: int) -> bool:
    """Whether a Whisper model of this vocabulary is English-only (tiny.en, base.en, ...).

    English-only models have no language or task tokens: their prompt is
    ``<|startoftranscript|><|notimestamps|>`` and transformers' ``generate()``
    refuses a ``language`` or ``task`` for them.
    """
    return vocab_size < MULTILINGUAL_MIN_VOCAB
MAX_TARGET_POSITIONS = 448  # decoder positions: generate()'s max_length
MAX_INITIAL_TIMESTAMP_INDEX = 50  # first timestamp at most 1.00 s, as openai/whisper decodes
EOT, SOT, TRANSLATE, TRANSCRIBE = "<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>"
PREV_SOT, NO_TIMESTAMPS = "<|startofprev|>", "<|notimestamps|>"


def read_ct2_variables(model_bin: Path, prefix: str = "") -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 ``model.bin`` as float32 arrays (aliases resolved),
    or only those whose names start with ``prefix`` (the others' data is skipped, not read).

    int8 weights are dequantised with their per-row ``weight_scale``; scalars
    (``num_heads``, flags) stay as their own dtype.
    """
    with open(model_bin, "rb") as handle:
        version = _u32(handle)
        if version != CT2_BINARY_VERSION:
            raise UserError(f"{model_bin}: CTranslate2 binary version {version}, this reader "
                            f"knows {CT2_BINARY_VERSION}; reconvert the model with ctranslate2 4.x")
        spec = _string(handle)
        if spec != "WhisperSpec":
            raise UserError(f"{model_bin} holds a {spec}, not a Whisper model; give a Whisper model")
        _u32(handle)  # spec revision
        read = (_variable(handle, prefix) for _ in range(_u32(handle)))
        raw = {name: array for name, array in read if name is not None}
        aliases = dict((_string(handle), _string(handle)) for _ in range(_u32(handle)))
    aliases = {alias: target for alias, target in aliases.items() if alias.startswith(prefix) and target in raw}
    variables = {}
    for name, array in raw.items():
        if name.endswith("weight_scale"):
            continue
        scale = raw.get(f"{name}_scale")
        if array.dtype == np.int8 and scale is not None:
            per_row = scale.astype(np.float32).reshape((-1,) + (1,) * (array.ndim - 1))
            array = array.astype(np.float32) / per_row
        elif array.dtype == np.float16:
            array = array.astype(np.float32)
        variables[name] = array
    for alias, target in aliases.items():
        variables[alias] = variables[target]
    return variables


def _u32(handle: BinaryIO) -> int:
    return struct.unpack("<I", handle.read(4))[0]


def _string(handle: BinaryIO) -> str:
    (length,) = struct.unpack("<H", handle.read(2))
    return handle.read(length)[:-1].decode("utf-8")  # NUL-terminated


def _variable(handle: BinaryIO, prefix: str = "") -> tuple[str | None, np.ndarray | None]:
    """The next variable, or ``(None, None)`` past one whose name lacks ``prefix``."""
    name = _string(handle)
    (rank,) = struct.unpack("<B", handle.read(1))
    dims = struct.unpack(f"<{rank}I", handle.read(4 * rank))
    (code,) = struct.unpack("<B", handle.read(1))
    if not name.startswith(prefix):
        handle.seek(_u32(handle), 1)
        return None, None
    data = bytearray(_u32(handle))  # writable, so torch can share it without a copy
    handle.readinto(data)
    array = np.frombuffer(data, dtype=CT2_DTYPES[code]).reshape(dims)
    if code == BF16_CODE:  # bf16 is the top half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return name, array


def hf_state_dict(variables: dict[str, np.ndarray]) -> dict[str, "torch.Tensor"]:
    """transformers' state dict (``model.`` prefix) from the CTranslate2 variables."""
    import torch

    state: dict[str, torch.Tensor] = {}

    def put(hf_name: str, array: np.ndarray) -> None:
        state[hf_name] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    def linear(hf: str, ct2: str, rows: slice = slice(None)) -> None:
        put(f"{hf}.weight", variables[f"{ct2}/weight"][rows])
        if f"{ct2}/bias" in variables and not hf.endswith("k_proj"):  # HF's k_proj has no bias
            put(f"{hf}.bias", variables[f"{ct2}/bias"][rows])

    def norm(hf: str, ct2: str) -> None:
        put(f"{hf}.weight", variables[f"{ct2}/gamma"])
        put(f"{hf}.bias", variables[f"{ct2}/beta"])

    d_model = variables["encoder/layer_norm/gamma"].shape[0]
    thirds = [slice(i * d_model, (i + 1) * d_model) for i in range(3)]
    for side in ("encoder", "decoder"):
        for i in range(_layer_count(variables, side)):
            hf, ct2 = f"model.{side}.layers.{i}", f"{side}/layer_{i}"
            for proj, rows in zip(("q_proj", "k_proj", "v_proj"), thirds):
                linear(f"{hf}.self_attn.{proj}", f"{ct2}/self_attention/linear_0", rows)
            linear(f"{hf}.self_attn.out_proj", f"{ct2}/self_attention/linear_1")
            norm(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
            if side == "decoder":
                linear(f"{hf}.encoder_attn.q_proj", f"{ct2}/attention/linear_0")
                linear(f"{hf}.encoder_attn.k_proj", f"{ct2}/attention/linear_1", thirds[0])
                linear(f"{hf}.encoder_attn.v_proj", f"{ct2}/attention/linear_1", thirds[1])
                linear(f"{hf}.encoder_attn.out_proj", f"{ct2}/attention/linear_2")
                norm(f"{hf}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm")
            linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0")
            linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1")
            norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")
        norm(f"model.{side}.layer_norm", f"{side}/layer_norm")
        put(f"model.{side}.embed_positions.weight", variables[f"{side}/position_encodings/encodings"])
    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    put("model.decoder.embed_tokens.weight", variables["decoder/embeddings/weight"])
    projection = variables.get("decoder/projection/weight")
    if projection is not None and projection is not variables["decoder/embeddings/weight"]:
        put("proj_out.weight", projection)  # untied output projection (not an alias)
    return state


def _layer_count(variables: dict[str, np.ndarray], side: str) -> int:
    pattern = re.compile(rf"^{side}/layer_(\d+)/")
    return 1 + max(int(m.group(1)) for name in variables if (m := pattern.match(name)))


def whisper_config(variables: dict[str, np.ndarray], ids: dict[str, int], ct2_config: dict,
                   tied: bool = True) -> "WhisperConfig":
    """The model config, read off the weight shapes; token ids from the tokenizer."""
    from transformers import WhisperConfig

    vocab_size, d_model = variables["decoder/embeddings/weight"].shape
    return WhisperConfig(
        vocab_size=int(vocab_size), d_model=int(d_model),
        num_mel_bins=int(variables["encoder/conv1/weight"].shape[1]),
        encoder_layers=_layer_count(variables, "encoder"),
        decoder_layers=_layer_count(variables, "decoder"),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=int(variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(variables["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(variables["decoder/position_encodings/encodings"].shape[0]),
        decoder_start_token_id=ids[SOT], bos_token_id=ids[EOT], eos_token_id=ids[EOT],
        pad_token_id=ids[EOT], begin_suppress_tokens=ct2_config.get("suppress_ids_begin", [220, ids[EOT]]),
        suppress_tokens=ct2_config.get("suppress_ids", []), tie_word_embeddings=tied,
        activation_function="gelu", scale_embedding=False,
    )


def language_ids(ids: dict[str, int], ct2_config: dict, multilingual: bool) -> dict[str, int]:
    """``{"<|en|>": 50259, ...}``: CT2's ``lang_ids``, else the tokens between SOT and translate."""
    if not multilingual:
        return {}
    id_to_token = {v: k for k, v in ids.items()}
    lang_ids = ct2_config.get("lang_ids") or range(ids[SOT] + 1, ids[TRANSLATE])
    return {id_to_token[i]: i for i in lang_ids}


def generation_config(config: "WhisperConfig", ids: dict[str, int], ct2_config: dict,
                      language: str | None, task: str) -> "GenerationConfig":
    """Whisper's generation config: language/task tables, timestamp ids, suppressions, task."""
    from transformers import GenerationConfig

    lang_to_id = language_ids(ids, ct2_config, not is_english_only(config.vocab_size))
    fields = dict(
        alignment_heads=ct2_config.get("alignment_heads", []), is_multilingual=bool(lang_to_id),
        no_timestamps_token_id=ids[NO_TIMESTAMPS], prev_sot_token_id=ids[PREV_SOT],
        suppress_tokens=list(config.suppress_tokens),
        begin_suppress_tokens=list(config.begin_suppress_tokens),
        max_length=MAX_TARGET_POSITIONS, max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP_INDEX,
        return_timestamps=False, decoder_start_token_id=ids[SOT], bos_token_id=ids[EOT],
        eos_token_id=ids[EOT], pad_token_id=ids[EOT],
    )
    # Only multilingual models get language/task fields: generate() runs language detection
    # whenever ``lang_to_id`` exists, even empty, and English-only models then get a bogus
    # language token.
    if lang_to_id:
        fields.update(lang_to_id=lang_to_id, task=task, language=language,
                      task_to_id={"transcribe": ids[TRANSCRIBE], "translate": ids[TRANSLATE]})
    gen = GenerationConfig()
    for name, value in fields.items():  # setattr: update() drops Whisper-only fields
        setattr(gen, name, value)
    return gen


def whisper_processor(ct2_dir: Path, n_mels: int, multilingual: bool, language: str | None,
                      task: str) -> "WhisperProcessor":
    """Feature extractor + tokenizer, with the tokenizer's special tokens marked special."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    tokenizer = WhisperTokenizer.from_pretrained(ct2_dir)  # reads tokenizer.json
    specials = [token for token in _added_tokens(ct2_dir) if token != EOT]
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    tokenizer.set_prefix_tokens(language=language if multilingual else None,
                                task=task if multilingual else None)
    features = WhisperFeatureExtractor(feature_size=n_mels)
    return WhisperProcessor(feature_extractor=features, tokenizer=tokenizer)


def _added_tokens(ct2_dir: Path) -> dict[str, int]:
    """Special tokens of the CTranslate2 folder's tokenizer.json, in id order."""
    path = ct2_dir / "tokenizer.json"
    if not path.is_file():
        raise UserError(f"{ct2_dir} has no tokenizer.json; copy the original model's "
                        f"tokenizer.json next to model.bin")
    added = json.loads(path.read_text(encoding="utf-8"))["added_tokens"]
    return {item["content"]: item["id"] for item in sorted(added, key=lambda item: item["id"])}


def convert_ct2_to_transformers(ct2_dir: Path, out_dir: Path, language: str | None = None,
                                task: str = "transcribe", marker: dict[str, str] | None = None) -> Path:
    """Write a float32 transformers Whisper folder for the CTranslate2 model in ``ct2_dir``.

    The folder appears whole or not at all (built under a temp name, then
    renamed); ``marker`` maps extra file names to text written inside it.
    """
    import torch
    from transformers import WhisperForConditionalGeneration

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    variables = read_ct2_variables(ct2_dir / "model.bin")
    config_path = ct2_dir / "config.json"
    ct2_config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    ids = _added_tokens(ct2_dir)
    state = hf_state_dict(variables)
    config = whisper_config(variables, ids, ct2_config, tied="proj_out.weight" not in state)
    del variables
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if unexpected or set(missing) - {"proj_out.weight"}:
        raise RuntimeError(f"CT2 → transformers mapping incomplete: missing {missing}, "
                           f"unexpected {unexpected}")
    model.tie_weights()
    model.generation_config = generation_config(config, ids, ct2_config, language, task)
    processor = whisper_processor(ct2_dir, config.num_mel_bins,
                                  not is_english_only(config.vocab_size), language, task)
    with publish_folder(out_dir) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        for name, text in (marker or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
    return out_dir
