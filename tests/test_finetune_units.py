"""finetune pieces that need no model: packing, OOM fallback, metrics, inputs.

Bad-input cases go through the real CLI entry point (in-process, so they are
cheap) and must fail with one clear line before any model is loaded.
"""

from __future__ import annotations

import csv
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "finetune"))
from builders import build_audiofolder, cut_window, window_texts  # noqa: E402

from finetune.checkpoints import Progress  # noqa: E402
from finetune.cli import main  # noqa: E402
from finetune.data import Example, load_dataset_input  # noqa: E402
from finetune.metrics import headline_metric, score  # noqa: E402
from finetune.oom import halved, run_with_oom_fallback  # noqa: E402
from finetune.packing import overlaps, pack_examples, packing_report  # noqa: E402
from finetune.presets import TrainingPlan  # noqa: E402
from finetune.run import ensure_disk_space  # noqa: E402
from finetune.order import StepOrder, pack_blocks  # noqa: E402
from finetune.train import record_evaluation  # noqa: E402
from whcore.errors import UserError  # noqa: E402



class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, message: str) -> None:
        self.lines.append(message)


# ---- packing ------------------------------------------------------------------------------

def _windows(source: str, split: str, length_s: float, window_s: float = 10.0,
             stride_s: float = 8.0) -> list[Example]:
    """10 s windows with 2 s overlap over a source, as segment cuts them."""
    examples, start = [], 0.0
    while start < length_s:
        end = min(start + window_s, length_s)
        examples.append(Example(Path(f"/{source}/{start}.wav"), f"{source} {start}", split, source,
                                start, end, end - start))
        start += stride_s
    return examples


def test_packing_invariants() -> None:
    examples = (_windows("a", "train", 95.0) + _windows("b", "train", 41.0)
                + _windows("a", "test", 33.0) + _windows("c", "test", 12.5)
                + [Example(Path("/hand/x.wav"), "x", "train", "train-row0", None, None, 7.0)])
    packs = pack_examples(examples)
    packed = [e for p in packs for e in p.examples]
    assert len(set(examples)) == len(examples)
    assert sorted(packed, key=repr) == sorted(examples, key=repr)  # each window exactly once
    for pack in packs:
        assert pack.duration <= 30.0 + 1e-6
        assert len({e.split for e in pack.examples}) == 1  # never across splits
        for a, b in itertools.combinations(pack.examples, 2):
            assert not overlaps(a, b), (a, b)
        assert pack.text("en") == " ".join(e.text for e in pack.examples)
    train = [e for e in examples if e.split == "train"]
    report = packing_report(train, [p for p in packs if p.split == "train"])
    assert report.inputs < report.windows / 2  # 10 s windows: about three per input
    assert report.saved_fraction > 0.5


def test_overlap_is_per_source_and_time() -> None:
    a = Example(Path("/a.wav"), "", "train", "s", 0.0, 10.0, 10.0)
    assert overlaps(a, Example(Path("/b.wav"), "", "train", "s", 8.0, 18.0, 10.0))
    assert not overlaps(a, Example(Path("/c.wav"), "", "train", "s", 10.0, 20.0, 10.0))
    assert not overlaps(a, Example(Path("/d.wav"), "", "train", "t", 0.0, 10.0, 10.0))


# ---- OOM fallback (the planner has its own tests in test_finetune_memory.py) -----------------

def _plan(batch: int, effective: int = 16) -> TrainingPlan:
    return TrainingPlan("cuda", effective, 8.0, batch, -(-effective // batch), 1, "fp16", True, "adamw", False)


def test_oom_halves_batch_doubles_accumulation_and_retries_the_same_step() -> None:
    plan = _plan(8)
    samples = list(range(16))
    calls: list[tuple[int, list[int]]] = []
    discarded: list[int] = []

    def step(current) -> float:  # noqa: ANN001 - a TrainingPlan
        calls.append((current.per_device_batch, samples))
        if current.per_device_batch > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return 0.5

    log = _Log()
    result, final = run_with_oom_fallback(step, plan, lambda: discarded.append(1), log)
    assert result == 0.5
    assert [b for b, _ in calls] == [8, 4, 2]
    assert all(s is samples for _, s in calls)  # the same step's samples each time
    assert (final.per_device_batch, final.grad_accumulation) == (2, 8)
    assert final.effective_batch == 16 and len(discarded) == 2
    assert len(log.lines) == 2 and "batch 4 x accumulation 4" in log.lines[0]


def test_oom_at_batch_one_stops_with_advice_and_other_errors_pass() -> None:
    plan = _plan(1, effective=2)
    with pytest.raises(UserError, match="batch 1"):
        halved(plan)

    def broken(current) -> None:  # noqa: ANN001
        raise ValueError("not memory")

    with pytest.raises(ValueError):
        run_with_oom_fallback(broken, plan, lambda: None, _Log())


# ---- training bookkeeping --------------------------------------------------------------------

def test_data_order_is_a_function_of_the_step() -> None:
    first = [StepOrder(10, seed=1).indices(s, 4) for s in range(5)]
    assert first == [StepOrder(10, seed=1).indices(s, 4) for s in range(5)]  # a resumed run: a fresh order
    flat = [i for batch in first for i in batch]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))
    assert flat[:10] != flat[10:20]


def test_sharded_order_reads_two_shards_at_a_time() -> None:
    from finetune.order import SHARDS_TOGETHER
    from finetune.packing import PackList

    shards = 7
    examples = [Example(Path(f"/d/shard{k % shards}.parquet"), "t", "train", f"s{k % shards}", 10.0 * (k // shards),
                        10.0 * (k // shards) + 10.0, 10.0, (k // 16, k % 16)) for k in range(shards * 120)]
    packs = pack_examples(examples)
    assert isinstance(packs, PackList)
    blocks = pack_blocks(packs)
    assert blocks is not None and len(set(blocks.tolist())) == shards
    order = StepOrder(len(packs), seed=3, blocks=blocks)
    epochs = [order.epoch(e) for e in range(3)]
    for epoch in epochs:
        assert sorted(epoch.tolist()) == list(range(len(packs)))  # every pack once an epoch
        runs = [set(blocks[epoch[i:i + 80]].tolist()) for i in range(0, len(epoch), 80)]  # 40 packs a shard
        assert len(runs) == 4 and all(len(run) <= SHARDS_TOGETHER for run in runs)  # a stretch reads 2 shards
    assert not np.array_equal(epochs[0], epochs[1]) and np.array_equal(StepOrder(len(packs), 3, blocks).epoch(1), epochs[1])
    assert pack_blocks(pack_examples(_windows("a", "train", 95.0))) is None  # whole files: a plain shuffle


def test_early_stopping_keeps_the_best_step() -> None:
    progress = Progress()
    for step, value in [(100, 30.0), (200, 25.0), (300, 26.0), (400, 25.0)]:
        progress.step = step
        record_evaluation(progress, value, patience=2)
    assert (progress.best_step, progress.best_metric, progress.stopped_early) == (200, 25.0, True)


# ---- metrics ---------------------------------------------------------------------------------

def test_example_table_keeps_every_row_as_it_was() -> None:
    from finetune.packing import unpacked
    from finetune.table import ExampleTable

    examples = (_windows("a", "train", 41.0) + _windows("b", "test", 17.0)
                + [Example(Path("/hand/x.wav"), "", "train", "train-row0", None, None, 7.0),
                   Example(Path("/d/shard.parquet"), "今天天气很好 é", "test", "b", 3.5, 13.5, 10.0, (4, 15)),
                   Example(Path("/d/shard.parquet"), "two", "test", "b", 11.5, 21.5, 10.0, (4, 16))])
    table = ExampleTable.of(examples)
    assert list(table) == examples and table[-2] == examples[-2] and table[1:3] == examples[1:3]
    assert len(table.files) == len(examples) - 1 and table.sources == ("a", "b", "train-row0")  # each value once
    assert table.source_ids() == {"a", "b", "train-row0"} and table.seconds() == sum(e.duration for e in examples)
    picked = table.select(np.array([len(examples) - 1, 0, 2]))
    assert list(picked) == [examples[-1], examples[0], examples[2]]
    assert list(table.text_sizes == 0) == [not e.text for e in examples]
    assert [p.examples for p in unpacked(table)] == [(e,) for e in examples]
    assert list(pack_examples(table)) == list(pack_examples(examples))
    with pytest.raises(IndexError):
        table[len(examples)]


def test_metrics_headline_and_normalisation() -> None:
    assert [headline_metric(c) for c in ("zh", "ja", "ko", "th", "en", "de")] == \
        ["cer", "cer", "cer", "cer", "normalized_wer", "normalized_wer"]
    english = score(["Hello, World! It's 10 o'clock."], ["hello world it's 10 o'clock"], "en")
    assert english.normalized_wer == 0.0 and english.wer > 0
    chinese = score(["今天天气很好"], ["今天 天气 不好"], "zh")
    assert chinese.cer == pytest.approx(100 / 6)


def test_metrics_and_packing_share_whcore_text_rules() -> None:
    from finetune.packing import Pack
    from whcore.text import character_error_rate

    for language, ref, hyp in (("zh", "今天天气很好。", "今天 天气 不好"), ("ko", "안녕하세요 여러분", "안녕하세요 여러 분"),
                               ("en", "Colour, please!", "color please")):
        assert score([ref], [hyp], language).cer == pytest.approx(100 * character_error_rate(ref, hyp, language))
    assert headline_metric("ko") == "cer"  # one constant: Korean is spaced but judged by CER
    zh = Pack(tuple(Example(Path(f"/z/{i}.wav"), text, "train", "z", 10.0 * i, 10.0 * i + 9, 9.0)
                    for i, text in enumerate(["今天天气很好", "我们去公园"])))
    assert zh.text("zh") == "今天天气很好我们去公园"
    assert zh.text("en") == "今天天气很好 我们去公园"


# ---- inputs ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_audiofolder(tmp_path_factory.mktemp("ds") / "dataset", {"train": [0.0, 8.0], "test": [56.0]})


def test_audiofolder_input(tiny_dataset: Path) -> None:
    data = load_dataset_input(tiny_dataset)
    assert [len(data.splits[s]) for s in ("train", "test")] == [2, 1]
    first = data.splits["train"][0]
    assert first.source_id == "espeak_lecture" and first.start == 0.0 and first.end == 10.0
    assert first.duration == pytest.approx(10.0, abs=0.05) and "Welcome" in first.text
    assert data.language == "en" and data.source_ids() == ["espeak_lecture"]
    packs = pack_examples(data.splits["train"])
    assert len(packs) == 2  # the two windows overlap (0-10 s and 8-18 s): never one input


def test_csv_input_with_relative_paths(tmp_path: Path) -> None:
    from transformers import WhisperProcessor

    from finetune.features import IGNORE_INDEX, Featurizer
    from whcore.models import transformers_model_dir

    texts = window_texts()
    rows = []
    for start in (0.0, 16.0, 32.0, 48.0):
        cut_window(start, start + 10.0, tmp_path / "clips" / f"clip{int(start)}.wav")
        rows.append({"audio": f"clips/clip{int(start)}.wav", "sentence": texts[start][1]})
    with open(tmp_path / "mine.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["audio", "sentence"])
        writer.writeheader()
        writer.writerows(rows)
    data = load_dataset_input(tmp_path / "mine.csv")
    assert len(data.splits["train"]) + len(data.splits["test"]) == 4 and data.splits["test"]
    assert len({e.source_id for s in data.splits.values() for e in s}) == 4
    packs = pack_examples(data.splits["train"])
    assert all(p.duration <= 30.0 for p in packs)

    processor = WhisperProcessor.from_pretrained(transformers_model_dir("offline-base"))
    featurizer = Featurizer(processor, "en", "transcribe")
    features = featurizer.input_features(packs)
    assert tuple(features.shape) == (len(packs), 80, 3000)
    assert len(featurizer.audio(packs[0])) == pytest.approx(16000 * packs[0].duration, abs=16)
    labels = featurizer.labels(packs)
    first = [t for t in labels[0].tolist() if t != IGNORE_INDEX]
    prefix = processor.tokenizer.convert_ids_to_tokens(first[:3])
    assert prefix == ["<|en|>", "<|transcribe|>", "<|notimestamps|>"]  # <|startoftranscript|> cut
    assert processor.tokenizer.decode(first, skip_special_tokens=True).strip() == packs[0].text("en")


def _fails(argv: list[str], match: str) -> str:
    with pytest.raises(UserError, match=match) as caught:
        main(argv)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_bad_inputs_fail_with_one_clear_line(tmp_path: Path, tiny_dataset: Path) -> None:
    ws = ["--workspace", str(tmp_path), "--model", "offline-base"]
    _fails(ws, "does not exist.*python -m label")  # no <workspace>/dataset
    (tmp_path / "empty").mkdir()
    _fails([*ws, "--dataset", str(tmp_path / "empty")], "is empty")
    no_test = build_audiofolder(tmp_path / "no_test", {"train": [0.0], "test": []})
    _fails([*ws, "--dataset", str(no_test)], "test split has no rows")
    broken = build_audiofolder(tmp_path / "broken", {"train": [0.0], "test": [56.0]})
    next((broken / "train").glob("*.wav")).unlink()
    _fails([*ws, "--dataset", str(broken)], "1 audio file.*do not exist")
    (tmp_path / "cols.csv").write_text("path,text\nclip.wav,hello\n", encoding="utf-8")
    _fails([*ws, "--dataset", str(tmp_path / "cols.csv")], "needs columns audio,sentence")
    _fails([*ws, "--dataset", str(tiny_dataset), "--language", "xx"], "language 'xx'")
    with pytest.raises(SystemExit) as caught:
        main([*ws, "--dataset", str(tiny_dataset), "--max-steps", "0"])
    assert caught.value.code == 2
    assert not (tmp_path / "model").exists() and not (tmp_path / "checkpoints").exists()


def test_hub_model_offline_suggests_offline_base(tmp_path: Path, tiny_dataset: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _fails(["--workspace", str(tmp_path), "--dataset", str(tiny_dataset)], "offline-base")


def test_no_disk_space_for_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not enough disk space"):
        ensure_disk_space(tmp_path / "checkpoints", 1 << 60)
    ensure_disk_space(tmp_path / "checkpoints", 1)


def test_checkpoint_restores_weights_optimizer_scheduler_and_rng(tmp_path: Path) -> None:
    from transformers import get_linear_schedule_with_warmup

    from finetune import checkpoints

    def setup() -> tuple:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        return model, optimizer, get_linear_schedule_with_warmup(optimizer, 1, 10)

    model, optimizer, scheduler = setup()
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(5, 4)).pow(2).mean().backward()
        optimizer.step()
        scheduler.step()
    folder = checkpoints.save_checkpoint(tmp_path, model, optimizer, scheduler, None, Progress(step=3))
    expected_draw = torch.rand(3)
    fresh_model, fresh_optimizer, fresh_scheduler = setup()
    checkpoints.load_weights(fresh_model, folder)
    checkpoints.load_trainer_state(folder, fresh_optimizer, fresh_scheduler, None)
    assert torch.equal(torch.rand(3), expected_draw)  # RNG continues where the checkpoint was
    for a, b in zip(model.parameters(), fresh_model.parameters()):
        assert torch.equal(a, b)
    state, fresh_state = optimizer.state_dict()["state"], fresh_optimizer.state_dict()["state"]
    assert all(torch.equal(state[k]["exp_avg"], fresh_state[k]["exp_avg"]) for k in state)
    assert fresh_scheduler.get_last_lr() == scheduler.get_last_lr()
    assert checkpoints.load_progress(folder).step == 3
    assert not list(tmp_path.glob(".tmp-*"))


def test_checkpoint_state_is_loaded_without_unpickling_objects(tmp_path: Path) -> None:
    import pickle

    from finetune import checkpoints

    folder = tmp_path / "checkpoint-1"
    folder.mkdir()
    torch.save({"optimizer": {}, "scheduler": {}, "scaler": None, "rng": {"hook": pickle.loads}},
               folder / checkpoints.TRAINER_STATE_NAME)
    with pytest.raises(pickle.UnpicklingError, match="[Ww]eights only"):
        checkpoints.load_trainer_state(folder, None, None, None)
