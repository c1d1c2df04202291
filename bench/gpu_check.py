"""On a machine with an NVIDIA GPU: does the planner's word hold, and is its choice fast?

One command, three checks, every number measured in this run:

1. **Memory.** For whisper tiny, base and small (published dimensions,
   random weights: memory and speed do not depend on the values), every
   configuration the planner can choose on this card (its precision from
   ``whcore.device``; AdamW, 8-bit AdamW, Adafactor; checkpointing off/on;
   LoRA) runs a few real optimizer steps through the trainer's own
   ``prepare_training`` and ``Stepper``. Printed: the planner's simulated
   allocated peak against ``torch.cuda.max_memory_allocated`` (goal: within
   10 %).
2. **Speed.** The configuration ``finetune`` would choose for this card
   against the seed project's fixed configuration (batch 8 x accumulation 2,
   fp16, AdamW, gradient checkpointing, as bench/finetune_memory.py's seed): samples/s of each and the ratio (goal:
   >= 3x; an OOM of the seed configuration is reported as such).
3. **Labelling.** ``python -m label`` with ``--device cuda`` (compute type
   from the device rules) against faster-whisper's ``BatchedInferencePipeline``
   on the same windows (bench/label_baseline.py, batch 8, same compute type):
   whole processes, wall seconds and the ratio.

Without CUDA it refuses with one line and exit status 2.

    .venv/bin/python bench/gpu_check.py                 # all three
    .venv/bin/python bench/gpu_check.py --skip-label    # training checks only
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ("tiny", "base", "small")
LABEL_TOKENS = 150  # about 30 s of speech
SEED_BATCH, SEED_ACCUMULATION = 8, 2  # the seed project's fixed configuration
WARMUP_STEPS, TIMED_STEPS = 2, 5
MEMORY_GOAL = 0.10  # planned peak within 10 % of max_memory_allocated
SPEED_GOAL = 3.0  # chosen preset >= 3x the seed configuration's samples/s


def refuse_without_cuda() -> str | None:
    """The one line to print where there is no usable CUDA device, else None."""
    import torch

    if not torch.cuda.is_available():
        return ("gpu_check: no CUDA GPU visible to PyTorch (torch.cuda.is_available() is False; "
                f"torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'}): run it on a "
                "machine with an NVIDIA GPU and a CUDA build of torch")
    return None


def configurations(precision: str, bnb: bool) -> list[dict]:
    """Every (optimizer, checkpointing, LoRA) the planner can choose, at the card's precision."""
    optimizers = ["adamw", "adafactor"] + (["adamw_8bit"] if bnb else [])
    configs = [dict(precision=precision, optimizer=o, gradient_checkpointing=c, lora=False)
               for o in optimizers for c in (False, True)]
    return configs + [dict(precision=precision, optimizer="adamw", gradient_checkpointing=c, lora=True)
                      for c in (False, True)]


def run_steps(dims, plan, steps: int) -> tuple[int, float]:  # noqa: ANN001
    """(max_memory_allocated, samples/s) of ``steps`` real optimizer steps of ``plan``."""
    import torch
    from transformers import WhisperForConditionalGeneration

    from finetune.step import Stepper
    from finetune.train import prepare_training

    device = torch.device("cuda")
    torch.cuda.empty_cache()
    model = WhisperForConditionalGeneration(dims.config(plan.attention))
    model, optimizer, scheduler = prepare_training(model, plan, 1e-5, 0, 1000)
    model.to(device).train()
    stepper = Stepper(model, optimizer, scheduler, plan.precision, device)

    def batch() -> dict:
        return {"input_features": torch.randn(plan.per_device_batch, dims.mels, 3000, device=device),
                "labels": torch.randint(0, dims.vocab - 1000, (plan.per_device_batch, LABEL_TOKENS), device=device)}

    micro = [(batch(), 1 / plan.grad_accumulation) for _ in range(plan.grad_accumulation)]
    for _ in range(WARMUP_STEPS):
        stepper.step(micro)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(steps):
        stepper.step(micro)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated()
    del model, optimizer, stepper, micro
    torch.cuda.empty_cache()
    return peak, steps * plan.per_device_batch * plan.grad_accumulation / seconds


def memory_round(gpu, bnb: bool) -> bool:  # noqa: ANN001
    """Planned vs measured peak of every configuration of every model; True if all within the goal."""
    from finetune.memory import GIB, MODEL_DIMS, simulate
    from finetune.presets import TrainingPlan
    from finetune.step import is_out_of_memory
    from whcore.device import training_precision

    precision = training_precision(gpu.compute_capability)
    ok = True
    print(f"{'model':<6}{'configuration':<62}{'planned GiB':>12}{'measured GiB':>13}{'error':>8}")
    for name in MODELS:
        dims = MODEL_DIMS[name]
        for config in configurations(precision, bnb):
            plan = TrainingPlan("cuda", 4, gpu.vram_gib, 2, 2, 1, config["precision"],
                                config["gradient_checkpointing"], config["optimizer"], config["lora"],
                                compute_capability=gpu.compute_capability)
            planned = simulate(plan.step_spec(dims, LABEL_TOKENS)).peak_allocated
            label = plan.step_spec(dims, LABEL_TOKENS).describe()
            try:
                measured, _ = run_steps(dims, plan, 2)
            except Exception as error:  # noqa: BLE001 - an OOM is a result here
                if not is_out_of_memory(error):
                    raise
                print(f"{name:<6}{label:<62}{planned / GIB:>12.2f}{'OOM':>13}")
                continue
            error = (planned - measured) / measured
            ok &= abs(error) <= MEMORY_GOAL
            print(f"{name:<6}{label:<62}{planned / GIB:>12.2f}{measured / GIB:>13.2f}{error:>+8.1%}")
    return ok


def speed_round(gpu, bnb: bool) -> bool:  # noqa: ANN001
    """Samples/s of finetune's chosen plan against the seed configuration, per model."""
    from finetune.memory import MODEL_DIMS
    from finetune.presets import TrainingPlan, make_plan
    from finetune.step import is_out_of_memory

    ok = True
    for name in MODELS:
        dims = MODEL_DIMS[name]
        chosen = make_plan(effective_batch=16, dims=dims, gpu=gpu, vram_gb=None, bnb_available=bnb,
                           label_tokens=LABEL_TOKENS)
        seed = TrainingPlan("cuda", 16, gpu.vram_gib, SEED_BATCH, SEED_ACCUMULATION, 1, "fp16", True, "adamw",
                            False, compute_capability=gpu.compute_capability)
        _, chosen_speed = run_steps(dims, chosen, TIMED_STEPS)
        try:
            _, seed_speed = run_steps(dims, seed, TIMED_STEPS)
        except Exception as error:  # noqa: BLE001 - an OOM is a result here
            if not is_out_of_memory(error):
                raise
            print(f"{name}: chosen {chosen_speed:.1f} samples/s ({chosen.describe()}); seed batch 8 x 2: OOM")
            continue
        ratio = chosen_speed / seed_speed
        ok &= ratio >= SPEED_GOAL
        print(f"{name}: chosen {chosen_speed:.1f} samples/s, seed batch {SEED_BATCH} x {SEED_ACCUMULATION} "
              f"fp16 {seed_speed:.1f} samples/s: {ratio:.2f}x ({replace(chosen, memory=None).describe()})")
    return ok


def label_round(gpu) -> None:  # noqa: ANN001
    """label --device cuda against faster-whisper batched on the same windows (whole processes)."""
    spec_file = importlib.util.spec_from_file_location("label_bench", ROOT / "bench" / "label.py")
    label_bench = importlib.util.module_from_spec(spec_file)
    spec_file.loader.exec_module(label_bench)
    from whcore.device import ct2_compute_type, ct2_supported_compute_types

    compute_type = ct2_compute_type(ct2_supported_compute_types("cuda"), "cuda")
    cache = Path("/tmp/whisper-harvest-gpu-check")
    runs = cache / "runs"
    spec = label_bench.SOURCES[0]
    workspace = label_bench.prepared_workspace(spec, label_bench.FULL_SECONDS, cache)
    log = cache / "gpu_check.log"
    base_out = runs / "baseline.jsonl"
    runs.mkdir(parents=True, exist_ok=True)
    baseline = label_bench.timed(label_bench.baseline_command(workspace, spec.language, base_out)
                                 + ["--device", "cuda", "--compute-type", compute_type], "baseline", log)
    labelled = label_bench.fresh_copy(workspace, runs, "label")
    ours = label_bench.timed(label_bench.label_command(labelled, spec.language, "--device", "cuda"), "label", log)
    print(f"label on {gpu.name} ({compute_type}): {ours.seconds:.1f} s; faster-whisper batched: "
          f"{baseline.seconds:.1f} s; ratio {baseline.seconds / ours.seconds:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-label", action="store_true", help="training checks only")
    args = parser.parse_args()
    problem = refuse_without_cuda()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from finetune.presets import bitsandbytes_available
    from whcore.device import detect_gpu

    gpu = detect_gpu()
    bnb = bitsandbytes_available()
    print(f"card: {gpu.describe()}; bitsandbytes {'installed' if bnb else 'not installed'}")
    memory_ok = memory_round(gpu, bnb)
    speed_ok = speed_round(gpu, bnb)
    if not args.skip_label:
        label_round(gpu)
    print(f"memory goal (within {MEMORY_GOAL:.0%}): {'met' if memory_ok else 'NOT met'}; "
          f"speed goal (>= {SPEED_GOAL:g}x the seed): {'met' if speed_ok else 'NOT met'}")
    return 0 if memory_ok and speed_ok else 1


if __name__ == "__main__":
    sys.exit(main())
