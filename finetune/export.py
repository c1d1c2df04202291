"""Write the fine-tuned model: transformers folder, CTranslate2 copy, optional Hub push.

Everything that makes up the model folder (weights, processor, ``ct2/``,
curves, results, card) is built in one staging folder and published with
``whcore.publish.publish_folder``: a kill at any instant leaves the previous
model folder whole or the new one whole, never a mix of the two.

The transformers folder carries the processor and a generation config with
the language and task set, so ``pipeline("automatic-speech-recognition",
model=DIR)`` transcribes in the trained language without extra arguments.
The CTranslate2 copy (``<output>/ct2``, int8 by default) is what
faster-whisper and ``label --model`` load for the next self-training round;
``tokenizer.json`` and ``preprocessor_config.json`` are copied beside it
because faster-whisper reads them from the model folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from finetune.curves import RUNS_DIR
from whcore.errors import UserError
from whcore.publish import PROVENANCE_NAME, TEMP_PREFIX

CT2_DIR = "ct2"
CT2_QUANTIZATIONS = ("int8", "int8_float16", "int8_float32", "int8_bfloat16", "int16",
                     "float16", "bfloat16", "float32")
CT2_SIDE_FILES = ("tokenizer.json", "preprocessor_config.json")


def set_generation_language(model: Any, language: str | None, task: str | None) -> None:
    """Make language and task the defaults of ``generate()`` (and so of the pipeline).

    ``None`` for both (an English-only model) leaves them unset: ``generate()``
    refuses either for a model without language tokens.
    """
    config = model.generation_config
    config.language = language
    config.task = task
    config.forced_decoder_ids = None
    model.config.forced_decoder_ids = None


def save_transformers(model: Any, processor: Any, folder: Path, prompt: dict[str, str | None]) -> None:
    """Save model + processor into ``folder`` (a staging folder the caller publishes);
    ``prompt`` is ``Featurizer.prompt()``: the language and task, or none for English-only models."""
    set_generation_language(model, prompt["language"], prompt["task"])
    processor.tokenizer.set_prefix_tokens(**prompt, predict_timestamps=False)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    if not (folder / "preprocessor_config.json").exists():  # transformers 5 folds it into processor_config
        processor.feature_extractor.save_pretrained(folder)


def export_ct2(folder: Path, quantization: str) -> str:
    """Convert the transformers model saved in ``folder`` to ``folder/ct2``; returns the weights'
    fingerprint, which the copy records as its provenance.

    ``whcore.models.ct2_model_dir`` uses ``<model>/ct2`` only while that
    recorded fingerprint is the one of the weights beside it, so a copy left
    from older weights is never used for labelling.
    """
    import ctranslate2

    from whcore.models import model_fingerprint

    if quantization not in CT2_QUANTIZATIONS:
        raise UserError(f"--ct2-quantization {quantization!r} is not one of {', '.join(CT2_QUANTIZATIONS)}")
    copy_files = [name for name in CT2_SIDE_FILES if (folder / name).is_file()]
    converter = ctranslate2.converters.TransformersConverter(str(folder), copy_files=copy_files,
                                                             low_cpu_mem_usage=True)
    converter.convert(str(folder / CT2_DIR), quantization=quantization, force=True)
    weights = model_fingerprint(str(folder))
    provenance = {"weights": weights, "quantization": quantization, "made_from": "the transformers model in .."}
    (folder / CT2_DIR / PROVENANCE_NAME).write_text(json.dumps(provenance, indent=1, sort_keys=True) + "\n",
                                                    encoding="utf-8")
    return weights


def carry_tensorboard_logs(output: Path, folder: Path) -> None:
    """Copy the TensorBoard logs written into ``output`` during training into the new version."""
    runs = output / RUNS_DIR
    if runs.is_dir():
        shutil.copytree(runs, folder / RUNS_DIR, dirs_exist_ok=True)


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
