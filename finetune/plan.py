"""``python -m finetune plan``: will this model, at this batch, fit on this GPU?

Answers before anything is downloaded or trained: the model's shape comes
from its published dimensions (``tiny`` … ``large-v3``, ``turbo``) or from a
local folder's config, and the training step is simulated on fake tensors
(``finetune.memory``), so no weights and no GPU are needed. With ``--vram``
the planner picks the fastest configuration that fits; with
``--batch-size`` and ``--checkpointing`` one configuration is estimated as
given.
"""

from __future__ import annotations

import argparse
import math
from typing import Sequence

from finetune.depth import simulate_deep
from finetune.memory import (ATTENTIONS, GIB, MAX_LABEL_TOKENS, MODEL_DIMS, OPTIMIZERS, StepSpec,
                             WhisperDims, dims_for_name, dims_from_config)
from finetune.options import DEFAULT_EFFECTIVE_BATCH, DEFAULT_MODEL
from finetune.planner import MARGIN, choose, describe
from finetune.presets import bitsandbytes_available
from whcore.cli import HelpFormatter, positive_float, positive_int
from whcore.device import (KNOWN_GPUS, GpuFacts, attention_kernel, bf16_native, ct2_compute_type,
                           ct2_cuda_compute_types, detect_gpu, gpu_by_name, parse_compute_capability,
                           training_precision, uses_grad_scaler)
from whcore.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m finetune plan", description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    add = parser.add_argument
    add("--model", default=DEFAULT_MODEL,
        help=f"size name ({', '.join(MODEL_DIMS)}, optionally openai/whisper-NAME[.en]), "
             "offline-base, or a local model folder")
    add("--vram", type=positive_float, metavar="GiB",
        help="GPU memory to fit [default: read from the GPU (or --gpu); required without one]")
    add("--compute-capability", metavar="MAJOR.MINOR",
        help="plan for a card of this CUDA compute capability (7.5: RTX 20xx/GTX 16xx/T4; 8.6: RTX 30xx): "
             "it decides bf16 vs fp16 + GradScaler, the attention kernel and label's compute type")
    add("--gpu", metavar="NAME", help=f"plan for a known card: {', '.join(KNOWN_GPUS)}")
    add("--effective-batch", type=positive_int, default=DEFAULT_EFFECTIVE_BATCH,
        help="samples per optimizer step (per-device batch x accumulation x GPUs)")
    add("--gpus", type=positive_int, default=1, help="data-parallel processes sharing the effective batch")
    add("--label-tokens", type=positive_int, default=MAX_LABEL_TOKENS,
        help=f"decoder label length to plan for (<= {MAX_LABEL_TOKENS}; training uses the dataset's longest)")
    add("--precision", choices=("fp16", "bf16"),
        help="autocast dtype [default: bf16 where the GPU has it natively (compute capability >= 8.0)]")
    add("--lora", action="store_true", help="train LoRA adapters (peft) instead of all weights")
    add("--bnb", action=argparse.BooleanOptionalAction, default=None,
        help="whether bitsandbytes' 8-bit AdamW may be used [default: whether it is installed]")
    add("--batch-size", type=positive_int, help="per-device batch: fixes it instead of choosing")
    add("--checkpointing", choices=("on", "off"),
        help="with --batch-size: estimate exactly this configuration instead of choosing")
    add("--optimizer", choices=OPTIMIZERS, default="adamw", help="with --checkpointing: the optimizer")
    add("--attention", choices=ATTENTIONS, default="sdpa",
        help="with --checkpointing: sdpa (flash/memory-efficient kernels) or eager")
    return parser


def model_dims(spec: str) -> WhisperDims:
    """The dimensions of the model ``spec`` names, without loading weights."""
    dims = dims_for_name(spec)
    if dims is not None:
        return dims
    from transformers import WhisperConfig

    from whcore.models import resolve_model, transformers_model_dir

    resolved = resolve_model(spec)
    if resolved.is_offline_base:
        return MODEL_DIMS["base"]
    if resolved.kind == "hub":
        raise UserError(f"--model {spec!r}: plan needs no download; give its size ({', '.join(MODEL_DIMS)}) "
                        "or a local model folder")
    return dims_from_config(WhisperConfig.from_pretrained(transformers_model_dir(spec)))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.label_tokens > MAX_LABEL_TOKENS:
        raise UserError(f"--label-tokens {args.label_tokens}: Whisper's decoder takes at most {MAX_LABEL_TOKENS}")
    dims = model_dims(args.model)
    gpu = target_gpu(args)
    vram = args.vram or (gpu.vram_gib if gpu is not None and gpu.vram_bytes else None)
    precision = args.precision or (training_precision(gpu.compute_capability) if gpu else "fp16")
    print(f"model {args.model}: d_model {dims.d_model}, {dims.encoder_layers}+{dims.decoder_layers} layers, "
          f"{dims.mels} mel bins, vocabulary {dims.vocab}")
    if gpu is not None:
        print("\n".join(device_lines(gpu, precision)))
    if args.checkpointing:
        if not args.batch_size:
            raise UserError("--checkpointing estimates one configuration: give --batch-size too")
        return estimate_one(args, dims, precision, vram)
    if vram is None:
        raise UserError("no GPU visible here: pass --vram GiB (the card's memory) to plan for it, "
                        "or --batch-size N --checkpointing on|off to estimate one configuration")
    bnb = bitsandbytes_available() if args.bnb is None else args.bnb
    result = choose(dims, vram, effective_batch=args.effective_batch, num_processes=args.gpus,
                    label_tokens=args.label_tokens, precision=precision, bnb_available=bnb,
                    lora=args.lora, batch=args.batch_size)
    print(f"chosen for {vram:g} GiB: {result.chosen.spec.describe()}")
    print(f"why: {result.reason()}")
    print("\n".join(result.chosen.estimate.lines()))
    print(f"\nconsidered (speed: relative samples/s of the planner's model):")
    print("\n".join(describe(result)))
    return 0


def target_gpu(args: argparse.Namespace) -> GpuFacts | None:
    """The card to plan for: --gpu NAME, --compute-capability (with --vram), else this machine's."""
    if args.gpu:
        card = gpu_by_name(args.gpu)
        if args.compute_capability:
            card = GpuFacts(card.name, parse_compute_capability(args.compute_capability), card.vram_bytes)
        return card
    if args.compute_capability:
        cc = parse_compute_capability(args.compute_capability)
        return GpuFacts("GPU", cc, int((args.vram or 0) * GIB))
    return detect_gpu()


def device_lines(gpu: GpuFacts, precision: str) -> list[str]:
    """What the device rules (whcore.device) give this card, for training and labelling."""
    native = bf16_native(gpu.compute_capability)
    why = ("bf16 is native from compute capability 8.0" if native
           else "no native bf16 below compute capability 8.0: fp16 with loss scaling")
    scaler = " + GradScaler" if uses_grad_scaler(precision) else ""
    return [f"card: {gpu.describe()}",
            f"  training: {precision} autocast{scaler} over fp32 master weights ({why}); "
            f"{attention_kernel(gpu.compute_capability, precision)} SDPA attention kernel",
            f"  label: CTranslate2 compute type "
            f"{ct2_compute_type(ct2_cuda_compute_types(gpu.compute_capability), 'cuda')}"]


def estimate_one(args: argparse.Namespace, dims: WhisperDims, precision: str, vram: float | None) -> int:
    per_process = math.ceil(args.effective_batch / args.gpus)
    spec = StepSpec(dims, batch=args.batch_size, label_tokens=args.label_tokens, precision=precision,
                    gradient_checkpointing=args.checkpointing == "on", optimizer=args.optimizer,
                    attention=args.attention, lora=args.lora,
                    accumulation=math.ceil(per_process / args.batch_size))
    estimate = simulate_deep(spec)
    print(f"estimate: {spec.describe()}")
    print("\n".join(estimate.lines()))
    if vram is not None:
        budget = vram * GIB * (1 - MARGIN)
        verdict = "fits" if estimate.total <= budget else "does NOT fit"
        print(f"{verdict} {vram:g} GiB with a {MARGIN:.0%} margin ({budget / GIB:.2f} GiB usable)")
    return 0
