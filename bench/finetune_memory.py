"""GPU-memory planner against measurements: a real CPU step always, the GPU when there is one.

CPU part (runs anywhere, ``--cpu``): for whisper-tiny and base, the planner's
simulated peak (fake tensors) against the same training step run for real on
the CPU, whose allocated peak is read from the CPU allocator's profiler
events. Goal: within 2 %.

GPU part (needs CUDA; none has been lent to this project, so it has not run):
for each ``--vram`` size the planner's chosen configuration is trained for a
few steps in its own subprocess, capped with
``torch.cuda.set_per_process_memory_fraction``, and
``torch.cuda.max_memory_allocated`` is compared with the plan (goal: within
10 %); samples/s of each is compared with the seed's configuration measured in
the same run (batch 8 x accumulation 2, fp16, checkpointing, AdamW, unpacked
10 s windows; goal >= 3x).

    .venv/bin/python bench/finetune_memory.py --cpu
    .venv/bin/python bench/finetune_memory.py [--steps 6] [--presets 4 6 8 12 16 24]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WINDOW_S = 10.0  # one segment window
PACKED_S = 30.0  # three windows packed into one input
TOKENS_PER_10_S = 40  # typical label length of 10 s of speech
EFFECTIVE_BATCH = 16
GOAL_PEAK_GIB = 6.0
GOAL_SPEEDUP = 3.0
GOAL_PLAN_ERROR = 0.10  # GPU: plan vs torch.cuda.max_memory_allocated
GOAL_CPU_ERROR = 0.02  # CPU: simulation vs the real CPU step
CPU_CASES = [  # (model, settings) checked against a real CPU step
    ("tiny", dict(batch=2, label_tokens=100, precision="fp32")),
    ("tiny", dict(batch=2, label_tokens=100, precision="bf16", gradient_checkpointing=True)),
    ("tiny", dict(batch=2, label_tokens=100, precision="fp32", lora=True, accumulation=2)),
    ("base", dict(batch=2, label_tokens=100, precision="fp32")),
    ("base", dict(batch=2, label_tokens=100, precision="bf16", gradient_checkpointing=True)),
]
SMALL_CONFIG = dict(d_model=768, encoder_layers=12, decoder_layers=12, encoder_attention_heads=12,
                    decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072,
                    vocab_size=51865, num_mel_bins=80, max_source_positions=1500,
                    max_target_positions=448, decoder_start_token_id=50258, pad_token_id=50257,
                    eos_token_id=50257)


def build_model(spec: str | None):  # noqa: ANN201
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    if spec:
        from whcore.models import load_hf_whisper

        return load_hf_whisper(spec)[0]
    return WhisperForConditionalGeneration(WhisperConfig(**SMALL_CONFIG))


def run_one(config: dict) -> dict:
    """Train ``config["steps"]`` steps of one configuration; returns its measurements."""
    import torch
    from accelerate import Accelerator

    from finetune.lora import apply_lora
    from finetune.memory import dims_from_config
    from finetune.presets import bitsandbytes_available, make_plan
    from finetune.train import make_optimizer
    from whcore.device import detect_gpu

    total_gib = torch.cuda.get_device_properties(0).total_memory / 2**30
    if config["cap_gib"]:
        torch.cuda.set_per_process_memory_fraction(min(1.0, config["cap_gib"] / total_gib))
    model = build_model(config["model"])
    params = sum(p.numel() for p in model.parameters())
    planned_gib = None
    if config["name"] == "seed":
        batch, accumulation, precision, optimizer_name, lora = 8, 2, "fp16", "adamw", False
        checkpointing = True
    else:
        plan = make_plan(effective_batch=EFFECTIVE_BATCH, dims=dims_from_config(model.config), gpu=detect_gpu(),
                         vram_gb=config["vram"], bnb_available=bitsandbytes_available(),
                         label_tokens=int(TOKENS_PER_10_S * 3))
        batch, accumulation = plan.per_device_batch, plan.grad_accumulation
        precision, optimizer_name, lora = plan.precision, plan.optimizer, plan.lora
        checkpointing, planned_gib = plan.gradient_checkpointing, plan.memory.peak_allocated / 2**30
    if checkpointing:
        model.config.use_cache = False
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if lora:
        model = apply_lora(model)
    accelerator = Accelerator(mixed_precision=precision)
    optimizer = make_optimizer(optimizer_name, [p for p in model.parameters() if p.requires_grad], 1e-5)
    model, optimizer = accelerator.prepare(model, optimizer)
    packed = config["packed"]
    audio_per_input = PACKED_S if packed else WINDOW_S
    label_len = int(TOKENS_PER_10_S * audio_per_input / WINDOW_S)
    features = torch.randn(batch, 80, 3000, device=accelerator.device)
    labels = torch.randint(0, 50000, (batch, label_len), device=accelerator.device)
    timings = []
    try:
        for step in range(config["steps"] + 1):  # step 0 warms up kernels and the allocator
            torch.cuda.synchronize()
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            for _ in range(accumulation):
                loss = model(input_features=features, labels=labels).loss / accumulation
                accelerator.backward(loss)
            optimizer.step()
            torch.cuda.synchronize()
            if step:
                timings.append(time.perf_counter() - started)
    except torch.cuda.OutOfMemoryError:
        return {**config, "oom": True, "batch": batch, "accumulation": accumulation}
    step_s = sum(timings) / len(timings)
    samples = batch * accumulation
    return {**config, "oom": False, "batch": batch, "accumulation": accumulation, "planned_gib": planned_gib,
            "precision": precision, "optimizer": optimizer_name, "lora": lora, "params": params,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30, "step_s": step_s,
            "samples_per_s": samples / step_s, "audio_s_per_s": samples * audio_per_input / step_s}


def cpu_part() -> int:
    """Simulation vs the real CPU step for whisper-tiny and base; prints the ratios."""
    import os

    from finetune.memory import MODEL_DIMS, StepSpec, measure_cpu_peak, simulate

    load = os.getloadavg()[0]
    print(f"CPU validation (load {load:.2f} on {os.cpu_count()} cores): simulated vs real allocated peak")
    worst = 0.0
    for name, settings in CPU_CASES:
        spec = StepSpec(MODEL_DIMS[name], device="cpu", **settings)
        started = time.perf_counter()
        simulated = simulate(spec).peak_allocated
        simulate_s = time.perf_counter() - started
        started = time.perf_counter()
        real = measure_cpu_peak(spec)
        real_s = time.perf_counter() - started
        error = abs(simulated - real) / real
        worst = max(worst, error)
        print(f"  {name:<5}{spec.describe():<92}simulated {simulated / 2**20:8.1f} MiB  real "
              f"{real / 2**20:8.1f} MiB  error {error:6.2%}  (simulation {simulate_s:.1f} s = "
              f"{simulate_s / real_s:.2f}x the real step's {real_s:.1f} s)")
    print(f"goal: within {GOAL_CPU_ERROR:.0%}: worst {worst:.2%} ({'met' if worst <= GOAL_CPU_ERROR else 'NOT met'})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="only the CPU part (simulation vs a real CPU step)")
    parser.add_argument("--steps", type=int, default=6, help="timed optimizer steps per configuration")
    parser.add_argument("--presets", type=float, nargs="+", default=[4, 6, 8, 12, 16, 24],
                        help="VRAM presets (GiB) to measure, each capped to its size")
    parser.add_argument("--seed-cap", type=float, default=8.0,
                        help="GiB cap for the seed configuration (the reference laptop had 8 GB)")
    parser.add_argument("--model", help="model SPEC to load instead of a random whisper-small")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cpu:
        return cpu_part()
    import torch

    if not torch.cuda.is_available():
        print("error: bench/finetune_memory.py measures GPU memory and needs a CUDA GPU; "
              "none is visible to torch here (CPU-only build or no device); run --cpu for the CPU "
              "part", file=sys.stderr)
        return 2
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))))
        return 0
    configs = [{"name": "seed", "vram": None, "cap_gib": args.seed_cap, "packed": False}]
    configs += [{"name": f"preset {v:g} GB", "vram": v, "cap_gib": v, "packed": True} for v in args.presets]
    total = torch.cuda.get_device_properties(0).total_memory / 2**30
    print(f"device: {torch.cuda.get_device_name(0)}, {total:.1f} GiB; model: "
          f"{args.model or 'whisper-small config, random weights'}; {args.steps} timed steps each")
    rows = []
    for config in configs:
        config = {**config, "steps": args.steps, "model": args.model}
        result = subprocess.run([sys.executable, __file__, "--one", json.dumps(config)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            print(f"{config['name']}: failed\n{result.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    seed = next((r for r in rows if r["name"] == "seed" and not r["oom"]), None)
    print(f"{'configuration':<16}{'cap GiB':>8}{'batch x acc':>12}{'prec':>6}{'optim':>12}"
          f"{'plan GiB':>9}{'peak GiB':>10}{'s/step':>8}{'samples/s':>10}{'audio s/s':>10}{'vs seed':>8}")
    for r in rows:
        if r["oom"]:
            print(f"{r['name']:<16}{r['cap_gib']:>8.1f}{r['batch']:>6} x {r['accumulation']:<3}  OUT OF MEMORY")
            continue
        ratio = r["audio_s_per_s"] / seed["audio_s_per_s"] if seed else float("nan")
        print(f"{r['name']:<16}{r['cap_gib']:>8.1f}{r['batch']:>6} x {r['accumulation']:<4}"
              f"{r['precision']:>6}{r['optimizer']:>12}{(r['planned_gib'] or float('nan')):>9.2f}"
              f"{r['peak_gib']:>10.2f}{r['step_s']:>8.2f}"
              f"{r['samples_per_s']:>10.2f}{r['audio_s_per_s']:>10.1f}{ratio:>7.2f}x")
    planned = [r for r in rows if not r["oom"] and r.get("planned_gib")]
    if planned:
        worst = max(abs(r["planned_gib"] - r["peak_gib"]) / r["peak_gib"] for r in planned)
        print(f"goal: plan within {GOAL_PLAN_ERROR:.0%} of torch.cuda.max_memory_allocated: worst "
              f"{worst:.1%} ({'met' if worst <= GOAL_PLAN_ERROR else 'NOT met'})")
    fits = [r for r in rows if r["name"] != "seed" and not r["oom"] and r["peak_gib"] <= GOAL_PEAK_GIB]
    best = max(fits, key=lambda r: r["audio_s_per_s"], default=None)
    if best and seed:
        speedup = best["audio_s_per_s"] / seed["audio_s_per_s"]
        print(f"goal: best preset within {GOAL_PEAK_GIB:g} GiB is {best['name']} at "
              f"{best['peak_gib']:.2f} GiB, {speedup:.2f}x the seed's audio/s "
              f"({'met' if speedup >= GOAL_SPEEDUP else 'NOT met'}: >= {GOAL_SPEEDUP:g}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
