"""The GPU-memory planner: simulation checked against real CPU steps, choices, CLI, LoRA.

The validation runs the same training step of the real Whisper model for real
on the CPU and reads the CPU allocator's peak from the profiler's memory
events: the simulation (fake tensors, storage counter) must equal it within
2 %. The planner tests use whisper-tiny so each simulation takes seconds.
"""

from __future__ import annotations

import math

import pytest

from finetune.cli import main
from finetune.depth import at_depth, simulate_deep
from finetune.memory import GIB, MODEL_DIMS, StepSpec, dims_for_name, measure_cpu_peak, simulate
from finetune.planner import MARGIN, choose, estimate, relative_speed
from finetune.presets import TrainingPlan, make_plan
from whcore.device import KNOWN_GPUS
from whcore.errors import UserError

TINY = MODEL_DIMS["tiny"]
VALIDATION_TOLERANCE = 0.02  # the bar: estimate within 2 % of the real allocated peak


@pytest.mark.parametrize("name, settings", [
    ("tiny", dict(batch=2, label_tokens=100, precision="fp32")),
    ("tiny", dict(batch=2, label_tokens=100, precision="bf16", gradient_checkpointing=True)),
    ("base", dict(batch=1, label_tokens=64, precision="fp32")),
    ("base", dict(batch=1, label_tokens=64, precision="bf16", gradient_checkpointing=True)),
], ids=["tiny-fp32", "tiny-bf16-checkpointing", "base-fp32", "base-bf16-checkpointing"])
def test_simulation_equals_a_real_cpu_step(name: str, settings: dict) -> None:
    spec = StepSpec(MODEL_DIMS[name], device="cpu", **settings)
    simulated = simulate(spec).peak_allocated
    real = measure_cpu_peak(spec)
    print(f"{name} {spec.describe()}: simulated {simulated / 2**20:.1f} MiB, real {real / 2**20:.1f} MiB")
    assert real > 100 * 2**20  # the step really allocated (weights + activations)
    assert abs(simulated - real) / real <= VALIDATION_TOLERANCE


def test_lora_simulation_equals_a_real_cpu_step_and_shrinks_gradients_and_state() -> None:
    full = StepSpec(TINY, batch=2, label_tokens=100, precision="fp32", device="cpu")
    lora = StepSpec(TINY, batch=2, label_tokens=100, precision="fp32", device="cpu", lora=True)
    simulated, full_estimate = simulate(lora), simulate(full)
    real = measure_cpu_peak(lora)
    assert abs(simulated.peak_allocated - real) / real <= VALIDATION_TOLERANCE
    assert simulated.trainable_params < 0.05 * simulated.total_params
    assert simulated.gradients < 0.05 * full_estimate.gradients
    assert simulated.optimizer_state < 0.05 * full_estimate.optimizer_state
    assert simulated.peak_allocated < full_estimate.peak_allocated


DEPTH_SETTINGS = [
    dict(batch=1, accumulation=16, optimizer="adamw_8bit", gradient_checkpointing=True),
    dict(batch=4, accumulation=1, precision="bf16", optimizer="adafactor", gradient_checkpointing=True),
    dict(batch=1, accumulation=1, lora=True),
    dict(batch=1, accumulation=2, precision="fp32", attention="eager"),
]


@pytest.mark.parametrize("settings", DEPTH_SETTINGS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_a_deep_step_is_extrapolated_exactly_from_depth_one_and_two(settings: dict) -> None:
    """finetune.depth: 2-3 shallow simulations give the deep model's memory, to the allocator's block,
    for equal depths and for turbo-like unequal ones (where the peak's phase moves with depth)."""
    for encoder, decoder in ((3, 3), (5, 2)):  # equal depths, and turbo-like (deep encoder)
        spec = at_depth(StepSpec(TINY, **settings), encoder, decoder)
        full, deep = simulate(spec), simulate_deep(spec)
        assert (deep.weights, deep.gradients, deep.optimizer_state, deep.trainable_params, deep.total_params) == \
            (full.weights, full.gradients, full.optimizer_state, full.trainable_params, full.total_params)
        assert abs(deep.peak_allocated - full.peak_allocated) <= 4 * 1024, (encoder, decoder)
        assert deep.peak_allocated > 2 * deep.weights  # a real step, not the weights alone


def test_cuda_rules_checkpointing_and_small_state_change_the_peak_the_right_way() -> None:
    base = StepSpec(TINY, batch=2, label_tokens=448, precision="fp16", attention="eager")
    eager = simulate(base)
    assert eager.total == eager.peak_allocated + eager.fragmentation + eager.context
    assert eager.context > 0 and eager.fragmentation > 0  # fixed overheads shown separately
    sdpa = simulate(StepSpec(TINY, batch=2, label_tokens=448, precision="fp16"))
    checkpointed = simulate(StepSpec(TINY, batch=2, label_tokens=448, precision="fp16",
                                     gradient_checkpointing=True))
    eight_bit = simulate(StepSpec(TINY, batch=2, label_tokens=448, precision="fp16", optimizer="adamw_8bit"))
    cpu_rules = simulate(StepSpec(TINY, batch=2, label_tokens=448, precision="fp16", attention="eager",
                                  device="cpu"))
    assert sdpa.peak_allocated < eager.peak_allocated  # no sequence x sequence matrices
    assert checkpointed.peak_allocated < sdpa.peak_allocated
    assert eight_bit.optimizer_state < 0.3 * sdpa.optimizer_state  # 2 bytes + scales vs 8 bytes a value
    # CUDA autocast keeps softmax/layer-norm outputs in fp32: more memory than CPU autocast.
    assert eager.peak_allocated > 1.2 * cpu_rules.peak_allocated
    assert sdpa.weights == sdpa.total_params * 4


def test_planner_picks_the_fastest_fitting_configuration_and_keeps_the_effective_batch() -> None:
    roomy = choose(TINY, 8.0)
    tight = choose(TINY, 2.5)
    for result in (roomy, tight):
        spec = result.chosen.spec
        assert spec.batch * spec.accumulation >= 16 and spec.batch <= 16
        assert result.chosen.estimate.total <= result.budget_bytes == int(result.vram_gib * GIB * (1 - MARGIN))
        fitting = [c for c in result.considered if c.fits and c.spec.optimizer == spec.optimizer]
        assert relative_speed(spec) == max(c.speed for c in fitting)  # nothing simulated and fitting is faster
        assert "fits" in result.reason() and "margin" in result.reason()
    assert not roomy.chosen.spec.gradient_checkpointing and roomy.chosen.spec.optimizer == "adamw"
    assert roomy.chosen.spec.batch >= tight.chosen.spec.batch
    assert relative_speed(roomy.chosen.spec) >= relative_speed(tight.chosen.spec)


def test_planner_uses_small_optimizer_state_then_lora_only_when_needed() -> None:
    adamw_floor = estimate(StepSpec(TINY, batch=1, gradient_checkpointing=True, accumulation=16)).total
    vram = adamw_floor * 0.97 / (1 - MARGIN) / GIB  # just too small for any AdamW configuration
    result = choose(TINY, vram, bnb_available=True, batch=1)  # one batch per mode: fewer simulations
    assert result.chosen.spec.optimizer == "adamw_8bit" and not result.chosen.spec.lora
    assert "no AdamW configuration fits" in result.reason()
    without_bnb = choose(TINY, vram, bnb_available=False, batch=1)
    assert without_bnb.chosen.spec.optimizer == "adafactor"
    asked = choose(TINY, 8.0, lora=True, batch=4)
    assert asked.chosen.spec.lora and asked.chosen.spec.batch == 4 and "--lora" in asked.reason()
    with pytest.raises(UserError, match="no configuration of this model fits 0.2 GiB"):
        choose(TINY, 0.2, batch=1)


def test_make_plan_on_cpu_and_gpu_carries_the_estimate() -> None:
    cpu = make_plan(effective_batch=3, dims=TINY, gpu=None, vram_gb=None, bnb_available=False, label_tokens=64)
    assert (cpu.device, cpu.precision, cpu.per_device_batch, cpu.grad_accumulation) == ("cpu", "fp32", 2, 2)
    assert cpu.memory is not None and cpu.memory.context == 0 and "simulated peak" in cpu.describe()
    gpu = make_plan(effective_batch=16, dims=TINY, gpu=KNOWN_GPUS["rtx-3070"], vram_gb=None,
                    bnb_available=False, batch_override=4)
    assert (gpu.precision, gpu.per_device_batch, gpu.grad_accumulation) == ("bf16", 4, 4)
    assert gpu.vram_gb == 8.0 and "flash kernel" in gpu.describe() and "GradScaler" not in gpu.describe()
    turing = make_plan(effective_batch=16, dims=TINY, gpu=KNOWN_GPUS["rtx-2060"], vram_gb=None,
                       bnb_available=False, batch_override=4)
    assert turing.precision == "fp16" and turing.grad_scaler and "fp16 autocast + GradScaler" in turing.describe()
    assert "memory-efficient kernel" in turing.describe() and turing.base_dtype == "fp32"
    assert gpu.memory.total <= 8.0 * GIB * (1 - MARGIN) and gpu.reason


def test_model_names_map_to_published_dimensions() -> None:
    assert dims_for_name("openai/whisper-large-v3") == MODEL_DIMS["large-v3"]
    assert dims_for_name("large-v3-turbo").decoder_layers == 4
    assert dims_for_name("tiny.en").vocab == 51864 and dims_for_name("base") == MODEL_DIMS["base"]
    assert dims_for_name("gpt2") is None
    # Parameter counts of the published checkpoints (transformers' count, tied embeddings once).
    params = {"tiny": 37.76e6, "base": 72.59e6, "small": 241.73e6, "medium": 763.86e6,
              "large-v3": 1543.49e6, "turbo": 808.88e6}
    for name, published in params.items():
        spec = StepSpec(MODEL_DIMS[name], batch=1, label_tokens=8)
        config = spec.dims.config()
        counted = _parameter_count(config)
        assert math.isclose(counted, published, rel_tol=0.03), (name, counted)


def _parameter_count(config) -> int:  # noqa: ANN001 - a WhisperConfig
    from torch._subclasses.fake_tensor import FakeTensorMode
    from transformers import WhisperForConditionalGeneration

    with FakeTensorMode():
        model = WhisperForConditionalGeneration(config)
        return sum(p.numel() for p in model.parameters())


def test_plan_cli_chooses_and_estimates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--model", "tiny", "--vram", "8"]) == 0
    out = capsys.readouterr().out
    assert "chosen for 8 GiB" in out and "why: fastest configuration" in out
    assert "CUDA context" in out and "allocator fragmentation" in out and "CHOSEN" in out
    assert main(["plan", "--model", "turbo", "--batch-size", "2", "--checkpointing", "on",
                 "--label-tokens", "64", "--vram", "6", "--lora"]) == 0
    out = capsys.readouterr().out
    assert "estimate: batch 2 x accumulation 8" in out and "LoRA" in out and "6 GiB" in out
    with pytest.raises(UserError, match="--batch-size"):
        main(["plan", "--model", "tiny", "--checkpointing", "on"])
    with pytest.raises(UserError, match="plan needs no download"):
        main(["plan", "--model", "someone/whisper-custom", "--vram", "8"])


def test_oom_fallback_is_refused_under_ddp() -> None:
    import torch

    from finetune.oom import run_with_oom_fallback

    plan = TrainingPlan("cuda", 16, 8.0, 4, 2, 2, "fp16", False, "adamw", False)

    def step(current: TrainingPlan) -> float:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(UserError, match="DDP.*--batch-size 2"):
        run_with_oom_fallback(step, plan, lambda: None, None)


def test_lora_base_is_half_precision_in_the_plan_and_the_disk_check_counts_adapters() -> None:
    from finetune.run import disk_needed, estimated_bytes

    full = simulate(StepSpec(TINY, batch=1, label_tokens=32, precision="bf16"))
    lora = simulate(StepSpec(TINY, batch=1, label_tokens=32, precision="bf16", lora=True))
    assert lora.weights < 0.55 * full.weights  # bf16 frozen base + small fp32 adapters
    assert "bf16 base + fp32 adapters" in lora.lines()[0] and "weights (fp32)" in full.lines()[0]
    plan = make_plan(effective_batch=2, dims=TINY, gpu=KNOWN_GPUS["rtx-3060-laptop"], vram_gb=None,
                     bnb_available=False, lora=True, batch_override=1, label_tokens=32)
    assert plan.base_dtype == "bf16" and plan.memory.trainable_params < 0.05 * plan.memory.total_params
    total = plan.memory.total_params
    assert disk_needed(plan, total) == estimated_bytes(plan.memory.trainable_params, total, plan)
    assert disk_needed(plan, total) < 0.5 * estimated_bytes(total, total, plan)
