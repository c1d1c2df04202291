"""Write the fine-tuned model: transformers folder, CTranslate2 copy, optional Hub push.

The transformers folder carries the processor and a generation config with
the language and task set, so ``pipeline("automatic-speech-recognition",
model=DIR)`` transcribes in the trained language without extra arguments.
The CTranslate2 copy (``<output>/ct2``, int8 by default) is what
faster-whisper and ``label --model`` load for the next self-training round;
``tokenizer.json`` and ``preprocessor_config.json`` are copied beside it
because faster-whisper reads them from the model folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from whcore.atomic import TEMP_PREFIX
from whcore.errors import UserError

CT2_DIR = "ct2"
CT2_QUANTIZATIONS = ("int8", "int8_float16", "int8_float32", "int8_bfloat16", "int16",
                     "float16", "bfloat16", "float32")
CT2_SIDE_FILES = ("tokenizer.json", "preprocessor_config.json")


def set_generation_language(model: Any, language: str, task: str) -> None:
    """Make language and task the defaults of ``generate()`` (and so of the pipeline)."""
    config = model.generation_config
    config.language = language
    config.task = task
    config.forced_decoder_ids = None
    model.config.forced_decoder_ids = None


def save_transformers(model: Any, processor: Any, output: Path, language: str, task: str) -> list[Path]:
    """Save model + processor into ``output``, file by file atomically; returns the files."""
    output.mkdir(parents=True, exist_ok=True)
    staging = output / f"{TEMP_PREFIX}{os.getpid()}-export"
    shutil.rmtree(staging, ignore_errors=True)
    set_generation_language(model, language, task)
    processor.tokenizer.set_prefix_tokens(language=language, task=task, predict_timestamps=False)
    model.save_pretrained(staging)
    processor.save_pretrained(staging)
    if not (staging / "preprocessor_config.json").exists():  # transformers 5 folds it into processor_config
        processor.feature_extractor.save_pretrained(staging)
    files = []
    for item in sorted(staging.iterdir()):
        target = output / item.name
        os.replace(item, target)
        files.append(target)
    staging.rmdir()
    return files


def export_ct2(output: Path, quantization: str) -> list[Path]:
    """Convert the saved transformers model in ``output`` to ``output/ct2``; returns its files."""
    import ctranslate2

    if quantization not in CT2_QUANTIZATIONS:
        raise UserError(f"--ct2-quantization {quantization!r} is not one of {', '.join(CT2_QUANTIZATIONS)}")
    target = output / CT2_DIR
    staging = output / f"{TEMP_PREFIX}{os.getpid()}-{CT2_DIR}"
    shutil.rmtree(staging, ignore_errors=True)
    copy_files = [name for name in CT2_SIDE_FILES if (output / name).is_file()]
    converter = ctranslate2.converters.TransformersConverter(str(output), copy_files=copy_files,
                                                             low_cpu_mem_usage=True)
    converter.convert(str(staging), quantization=quantization, force=True)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return sorted(p for p in target.iterdir() if p.is_file())


def push_to_hub(output: Path, repo: str, log: Any) -> None:
    """Upload ``output`` to the Hub repo ``repo`` (token from the environment or the CLI login)."""
    try:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo, exist_ok=True)
        api.upload_folder(folder_path=str(output), repo_id=repo,
                          ignore_patterns=[f"{TEMP_PREFIX}*", "runs/*"])
    except Exception as exc:  # noqa: BLE001 - any Hub failure is the user's to fix
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"--push-to-hub {repo}: upload failed ({first}); the model is saved in "
                        f"{output}; log in with `huggingface-cli login` or set HF_TOKEN") from None
    log.info(f"pushed {output} to https://huggingface.co/{repo}")
