"""Every configuration the planner can choose, run for real on CPU with the GPU's numerics.

A tiny randomly initialised Whisper (2+2 layers, d_model 64, 1 s inputs)
takes real optimizer steps through the trainer's own ``prepare_training``
and ``Stepper``: fp16 autocast with GradScaler, bf16 autocast and fp32;
AdamW, Adafactor and bitsandbytes' 8-bit AdamW (its CPU backend); LoRA on a
half-precision base; gradient checkpointing. Each must give a finite loss
that goes down, no non-finite weight, and end equal after a checkpoint
round trip (fresh model, optimizer, scheduler and scaler loaded from the
checkpoint, as a killed run's rerun builds them). Out-of-memory errors are
injected in every phase of a step and in evaluation.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from finetune import checkpoints
from finetune.checkpoints import Progress
from finetune.oom import evaluate_with_oom_fallback, run_with_oom_fallback
from finetune.presets import TrainingPlan, with_batch
from finetune.step import OptimizerOutOfMemory, Stepper
from finetune.train import prepare_training
from whcore.errors import UserError

MELS, FRAMES, LABEL_TOKENS, VOCAB = 16, 100, 12, 256  # 100 log-mel frames = 1 s input
SAMPLES = 8  # the fixed training set each step cycles through
LEARNING_RATE = 2e-3


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> object:
    """One intra-op thread: a tiny model's operators are too small to split, and on a shared
    machine two spinning threads cost ten times the CPU time of one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_whisper(seed: int = 0):  # noqa: ANN201 - a WhisperForConditionalGeneration
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    config = WhisperConfig(vocab_size=VOCAB, num_mel_bins=MELS, d_model=64, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
                           decoder_ffn_dim=128, max_source_positions=FRAMES // 2, max_target_positions=32,
                           pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
                           suppress_tokens=[], begin_suppress_tokens=[])
    config._attn_implementation = "sdpa"
    return WhisperForConditionalGeneration(config)


def dataset() -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [{"input_features": torch.randn(1, MELS, FRAMES, generator=generator),
             "labels": torch.randint(3, VOCAB, (1, LABEL_TOKENS), generator=generator)} for _ in range(SAMPLES)]


def micro_batches(step: int, plan: TrainingPlan, data: list[dict]) -> list[tuple[dict, float]]:
    """The step's samples (a function of the step) cut into the plan's micro-batches."""
    indices = [(step * plan.effective_batch + i) % len(data) for i in range(plan.effective_batch)]
    chunks = [indices[i:i + plan.per_device_batch] for i in range(0, len(indices), plan.per_device_batch)]
    return [({k: torch.cat([data[i][k] for i in chunk]) for k in data[0]}, len(chunk) / len(indices))
            for chunk in chunks]


def plan_of(precision: str, optimizer: str = "adamw", lora: bool = False, checkpointing: bool = False,
            batch: int = 2, effective: int = 4) -> TrainingPlan:
    return TrainingPlan("cpu", effective, None, batch, effective // batch, 1, precision, checkpointing,
                        optimizer, lora)


def trainer_parts(plan: TrainingPlan, model=None) -> tuple:  # noqa: ANN001
    model, optimizer, scheduler = prepare_training(model or tiny_whisper(), plan, LEARNING_RATE, 0, 100)
    model.train()
    # init_scale 2**8: the tiny model's gradients are small; a GPU run starts at 2**16 and the
    # scaler finds its level by skipping steps, which would only make this test longer.
    stepper = Stepper(model, optimizer, scheduler, plan.precision, torch.device("cpu"), init_scale=2.0**8)
    return model, stepper


def weights(model) -> dict[str, torch.Tensor]:  # noqa: ANN001
    return {name: p.detach().clone() for name, p in model.named_parameters()}


CONFIGURATIONS = [  # (precision, optimizer, lora, checkpointing): what the planner chooses among
    ("fp32", "adamw", False, False),  # the CPU plan
    ("fp16", "adamw", False, False), ("fp16", "adamw", False, True), ("fp16", "adamw_8bit", False, True),
    ("fp16", "adafactor", False, True), ("fp16", "adamw", True, False),
    ("bf16", "adamw", False, False), ("bf16", "adamw_8bit", False, False), ("bf16", "adafactor", False, True),
    ("bf16", "adamw", True, True),
]


@pytest.mark.parametrize("precision, optimizer, lora, checkpointing", CONFIGURATIONS,
                         ids=["-".join([c[0], c[1]] + (["lora"] if c[2] else []) + (["ckpt"] if c[3] else []))
                              for c in CONFIGURATIONS])
def test_every_planner_configuration_trains_and_resumes_equal(tmp_path: Path, precision: str, optimizer: str,
                                                              lora: bool, checkpointing: bool) -> None:
    plan = plan_of(precision, optimizer, lora, checkpointing)
    data = dataset()
    model, stepper = trainer_parts(plan)
    base = {n: p.dtype for n, p in model.named_parameters() if not p.requires_grad}
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)  # fp32 master
    if lora:  # the frozen base is held in the autocast precision: that is LoRA's memory saving
        assert set(base.values()) == {{"fp16": torch.float16, "bf16": torch.bfloat16}[precision]}
    initial = weights(model)
    steps, resume_at = 6, 3
    losses, folder = [], None
    for step in range(steps):
        if step == resume_at:
            folder = checkpoints.save_checkpoint(tmp_path, model, stepper.optimizer, stepper.scheduler,
                                                 stepper.scaler, Progress(step=step))
        losses.append(stepper.step(micro_batches(step, plan, data)))
    assert all(math.isfinite(loss) for loss in losses), losses
    assert stepper.skipped_steps <= 1, "the fp16 scaler skipped steps: no training happened"
    assert min(losses[-2:]) < losses[0], losses  # steps cycle through the same 8 samples: it learns
    final = weights(model)
    assert all(torch.isfinite(w).all() for w in final.values())
    assert any(not torch.equal(final[n], w) for n, w in initial.items())

    resumed, fresh = trainer_parts(plan)  # the rerun after a kill: everything built anew
    checkpoints.load_weights(resumed, folder)
    checkpoints.load_trainer_state(folder, fresh.optimizer, fresh.scheduler, fresh.scaler)
    resumed_losses = [fresh.step(micro_batches(step, plan, data)) for step in range(resume_at, steps)]
    assert resumed_losses == losses[resume_at:]
    for name, value in weights(resumed).items():
        assert torch.equal(value, final[name]), name


def test_8bit_adamw_keeps_8bit_state_and_is_refused_without_bitsandbytes() -> None:
    from finetune.memory import MODEL_DIMS
    from finetune.planner import choose, optimizer_tiers

    model, stepper = trainer_parts(plan_of("fp16", "adamw_8bit"))
    stepper.step(micro_batches(0, plan_of("fp16", "adamw_8bit"), dataset()))
    large = [s for s in stepper.optimizer.state.values() if s["state1"].numel() >= 4096]
    assert large and all(s["state1"].dtype == torch.uint8 for s in large)  # bitsandbytes' real 8-bit state
    assert optimizer_tiers(False, bnb_available=False, allow_lora=True)[1][0] == "adafactor"
    assert optimizer_tiers(False, bnb_available=True, allow_lora=True)[1][0] == "adamw_8bit"
    with pytest.raises(UserError, match="adamw_8bit needs bitsandbytes.*adafactor"):
        choose(MODEL_DIMS["tiny"], 8.0, optimizer="adamw_8bit", bnb_available=False)


# ---- checkpoints stored in half precision --------------------------------------------------------

@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same tiny model saved in fp32, fp16 and bf16 (as openai's large-v3 is stored in fp16)."""
    root = tmp_path_factory.mktemp("stored")
    folders = {}
    for name, dtype in (("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)):
        folders[name] = root / name
        tiny_whisper().to(dtype).save_pretrained(folders[name])
    return folders


def load(folder: Path):  # noqa: ANN201
    from transformers import WhisperForConditionalGeneration

    return WhisperForConditionalGeneration.from_pretrained(folder)  # as whcore.models.load_hf_whisper


@pytest.mark.parametrize("stored_as", ["fp16", "bf16"])
def test_half_precision_checkpoint_trains_fp32_master_weights(stored: dict[str, Path], stored_as: str) -> None:
    loaded = load(stored[stored_as])
    assert next(loaded.parameters()).dtype != torch.float32  # transformers 5 keeps the stored dtype
    model, _ = trainer_parts(plan_of("fp16"), loaded)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    lora, _ = trainer_parts(plan_of("bf16", lora=True), load(stored[stored_as]))
    dtypes = {p.requires_grad: {q.dtype for q in lora.parameters() if q.requires_grad == p.requires_grad}
              for p in lora.parameters()}
    assert dtypes == {True: {torch.float32}, False: {torch.bfloat16}}


def test_updating_fp16_weights_directly_is_what_fp32_master_weights_prevent(stored: dict[str, Path]) -> None:
    model = load(stored["fp16"]).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    scaler = torch.amp.GradScaler("cpu")
    batch, _ = micro_batches(0, plan_of("fp16"), dataset())[0]
    with torch.autocast("cpu", dtype=torch.float16):
        scaler.scale(model(**batch).loss).backward()
    with pytest.raises(ValueError, match="FP16 gradients"):
        scaler.unscale_(optimizer)


def test_fp16_stored_copy_fine_tunes_to_the_same_losses_within_2_percent(stored: dict[str, Path]) -> None:
    plan, data = plan_of("fp16"), dataset()
    curves = {}
    for name in ("fp32", "fp16"):
        torch.manual_seed(0)
        _, stepper = trainer_parts(plan, load(stored[name]))
        curves[name] = [stepper.step(micro_batches(step, plan, data)) for step in range(20)]
    print("fp32-stored", [round(x, 4) for x in curves["fp32"]])
    print("fp16-stored", [round(x, 4) for x in curves["fp16"]])
    assert curves["fp32"][-1] < 0.8 * curves["fp32"][0]  # it trained
    for a, b in zip(curves["fp32"], curves["fp16"]):
        assert abs(a - b) / a <= 0.02


# ---- out of memory in every phase -------------------------------------------------------------

class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, message: str) -> None:
        self.lines.append(message)


def _oom() -> torch.cuda.OutOfMemoryError:
    return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def _inject(phase: str, model, stepper: Stepper, monkeypatch: pytest.MonkeyPatch) -> list[int]:  # noqa: ANN001
    """Make the first step fail with an OOM in ``phase``; returns a list that counts the failures."""
    failures: list[int] = []

    def fail_once(*_: object) -> None:
        if not failures:
            failures.append(1)
            raise _oom()

    if phase == "forward":
        model.model.encoder.register_forward_pre_hook(lambda *a: fail_once())
    elif phase == "backward":
        model.model.encoder.conv1.weight.register_hook(lambda grad: fail_once() or grad)
    elif phase == "clip":  # after the scaler unscaled: the retry used to fail in unscale_()
        real = torch.nn.utils.clip_grad_norm_
        monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *a, **k: fail_once() or real(*a, **k))
    return failures


@pytest.mark.parametrize("phase", ["forward", "backward", "clip"])
def test_oom_in_forward_backward_or_clip_retries_the_step_at_half_batch(phase: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    plan, data = plan_of("fp16", batch=4, effective=4), dataset()
    clean, clean_stepper = trainer_parts(with_batch(plan, 2))
    clean_loss = clean_stepper.step(micro_batches(0, with_batch(plan, 2), data))
    model, stepper = trainer_parts(plan)
    failures = _inject(phase, model, stepper, monkeypatch)
    log = _Log()
    loss, final = run_with_oom_fallback(lambda p: stepper.step(micro_batches(0, p, data)), plan,
                                        stepper.discard, log)
    assert failures == [1] and stepper.phase == "idle"
    assert (final.per_device_batch, final.grad_accumulation) == (2, 2) and "batch 2" in log.lines[0]
    assert loss == pytest.approx(clean_loss, rel=1e-6)
    for name, value in weights(model).items():  # nothing of the failed attempt was applied
        assert torch.allclose(value, weights(clean)[name], atol=1e-6), name
    assert stepper.scaler.get_scale() == clean_stepper.scaler.get_scale()


def test_oom_in_the_optimizer_step_stops_with_one_line_and_applies_nothing() -> None:
    plan, data = plan_of("fp16", batch=2, effective=4), dataset()
    model, stepper = trainer_parts(plan)
    stepper.optimizer_oom_advice = "--optimizer adamw_8bit (or --lora)"
    before = weights(model)
    real_step = stepper.optimizer.step

    def step(*args: object, **kwargs: object) -> None:
        raise _oom()

    stepper.optimizer.step = step
    with pytest.raises(OptimizerOutOfMemory) as error:
        run_with_oom_fallback(lambda p: stepper.step(micro_batches(0, p, data)), plan, stepper.discard, _Log())
    message = str(error.value)
    assert "\n" not in message and "optimizer step" in message and "--optimizer adamw_8bit" in message
    assert all(torch.equal(value, before[name]) for name, value in weights(model).items())
    stepper.optimizer.step = real_step


def test_oom_in_evaluation_halves_its_batch_then_stops_with_advice() -> None:
    from finetune.evaluation import transcribe_packs

    model = tiny_whisper().eval()
    batches: list[int] = []
    features = torch.randn(4, MELS, FRAMES)

    def evaluate(batch: int) -> int:
        batches.append(batch)
        if batch > 1:
            raise _oom()
        outputs = [model.generate(input_features=features[i:i + 1], max_new_tokens=3) for i in range(4)]
        return len(outputs)

    log = _Log()
    assert evaluate_with_oom_fallback(evaluate, 4, lambda: None, log) == 4
    assert batches == [4, 2, 1] and len(log.lines) == 2
    with pytest.raises(UserError, match="evaluating at batch 1.*--lora"):
        evaluate_with_oom_fallback(lambda batch: (_ for _ in ()).throw(_oom()), 1, lambda: None, _Log())
    assert transcribe_packs is not None  # the trainer's evaluation goes through this fallback


def test_resume_under_another_plan_says_what_changed_and_starts_clean(tmp_path: Path) -> None:
    from whcore.journal import Journal, checkpoint_unit, setup_logging
    from whcore.workspace import Workspace

    workspace = Workspace(tmp_path)
    setup_logging(workspace, "finetune")
    root = tmp_path / "checkpoints"
    folder = checkpoints.checkpoint_dir(root, 2)
    folder.mkdir(parents=True)
    (folder / checkpoints.WEIGHTS_NAME).write_bytes(b"weights")
    settings = {"model": "tiny", "seed": 42}
    made_under = {**settings, "plan": plan_of("fp16", "adamw").state_params()}
    Journal(workspace, "finetune").mark_done(checkpoint_unit(2), made_under,
                                             files=checkpoints.checkpoint_files(folder))
    other_card = {**settings, "plan": plan_of("bf16", "adafactor", checkpointing=True).state_params()}
    assert checkpoints.latest_recorded(Journal(workspace, "finetune"), other_card, root) is None
    log = workspace.log_path.read_text(encoding="utf-8")
    assert "checkpoint:2: redo: plan.gradient_checkpointing changed false → true; plan.optimizer changed " \
           "adamw → adafactor; plan.precision changed fp16 → bf16" in log
    assert checkpoints.latest_recorded(Journal(workspace, "finetune"), made_under, root) == folder
