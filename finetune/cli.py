"""`python -m finetune`: fine-tune Whisper on the workspace dataset and export it.

Multi-GPU: ``accelerate launch -m finetune --workspace DIR ...`` runs one
process per GPU (DDP); the effective batch is split across them. Every rank
holds the workspace lock (shared between the ranks of the run, exclusive
against other stages and a second launch); only the first writes the journal
and outputs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from finetune.export import CT2_QUANTIZATIONS
from finetune.options import DEFAULT_EFFECTIVE_BATCH, DEFAULT_LEARNING_RATE, DEFAULT_MODEL, OPTIMIZERS, FinetuneOptions
from whcore.cli import make_parser, positive_float, positive_int
from whcore.journal import setup_logging
from whcore.workspace import Workspace, open_workspace, workspace_lock

STAGE = "finetune"


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("python -m finetune", __doc__.split("\n\n", 1)[0] + "\n\n"
                         "Run `python -m finetune plan --model NAME --vram GiB` to see what fits a GPU, and "
                         "`python -m finetune demo --model DIR` for a Gradio transcription demo.")
    add = parser.add_argument
    add("--dataset", help="dataset folder (label's Parquet shards, or any audiofolder) or CSV (columns audio,sentence; paths relative "
                          "to the CSV) [default: <workspace>/dataset]")
    add("--model", default=DEFAULT_MODEL, help="Hub id, local transformers or CTranslate2 folder, "
                                               "or offline-base (works without network)")
    add("--language", help="Whisper language code [default: the dataset's language column, else en]")
    add("--task", default="transcribe", choices=("transcribe", "translate"), help="Whisper task")
    add("--output", help="model folder [default: <workspace>/model]")
    add("--max-steps", type=positive_int, default=1000, help="optimizer steps")
    add("--eval-steps", type=positive_int, default=100,
        help="evaluate on the test split and checkpoint every N steps (and at the end)")
    add("--patience", type=positive_int, default=3,
        help="stop after this many evaluations without a better headline metric")
    add("--learning-rate", type=positive_float, default=DEFAULT_LEARNING_RATE, help="peak learning rate")
    add("--warmup-steps", type=int, default=50, help="linear warm-up steps (at most max-steps/10)")
    add("--effective-batch", type=positive_int, default=DEFAULT_EFFECTIVE_BATCH,
        help="samples per optimizer step (per-device batch x accumulation x GPUs)")
    add("--vram", type=positive_float, metavar="GiB",
        help="GPU memory to plan for; the planner simulates the step and picks the fastest "
             "configuration that fits (see `python -m finetune plan`) [default: read from the GPU]")
    add("--batch-size", type=positive_int, help="per-device batch, overriding the preset")
    add("--lora", action="store_true", help="train LoRA adapters (peft) instead of all weights")
    add("--optimizer", choices=OPTIMIZERS, help="force this optimizer instead of the planner's choice "
                                                 "(adamw_8bit: bitsandbytes' 8-bit AdamW; adafactor)")
    add("--no-pack", dest="pack", action="store_false",
        help="one window per input instead of packing windows into 30 s inputs")
    add("--seed", type=int, default=42, help="seed for data order and initialisation")
    add("--ct2-quantization", default="int8", choices=CT2_QUANTIZATIONS,
        help="weight type of the CTranslate2 export")
    add("--push-to-hub", metavar="REPO", help="upload the output to this Hub repo "
                                              "(token from HF_TOKEN or `huggingface-cli login`)")
    add("--cpu", action="store_true", help="train on CPU even when a GPU is present")
    add("--resume", action="store_true",
        help="require resuming from the last checkpoint in the journal (a plain rerun resumes too)")
    return parser


def options_from_args(args: argparse.Namespace, workspace_root: Path) -> FinetuneOptions:
    workspace = Workspace(workspace_root)
    output = Path(args.output).expanduser().resolve() if args.output else workspace.model_dir
    dataset = Path(args.dataset).expanduser().resolve() if args.dataset else workspace.dataset_dir
    return FinetuneOptions(
        dataset=dataset, output=output, checkpoints=workspace.checkpoints_dir,
        model=args.model, language=args.language, task=args.task, max_steps=args.max_steps,
        eval_steps=args.eval_steps, patience=args.patience, learning_rate=args.learning_rate,
        warmup_steps=max(0, args.warmup_steps), effective_batch=args.effective_batch,
        vram_gb=args.vram, batch_size=args.batch_size, lora=args.lora, optimizer=args.optimizer, pack=args.pack,
        seed=args.seed, ct2_quantization=args.ct2_quantization, push_to_hub=args.push_to_hub,
        cpu=args.cpu, resume=args.resume)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "demo":
        from finetune.demo import main as demo_main

        return demo_main(argv[1:])
    if argv and argv[0] == "plan":
        from finetune.plan import main as plan_main

        return plan_main(argv[1:])
    args = build_parser().parse_args(argv)
    workspace = open_workspace(args.workspace)
    options = options_from_args(args, workspace.root)
    from finetune.run import finetune

    rank, world = int(os.environ.get("RANK", "0") or 0), int(os.environ.get("WORLD_SIZE", "1") or 1)
    with workspace_lock(workspace, STAGE, (rank, world)):
        log = setup_logging(workspace, STAGE, args.verbose)
        return finetune(options, workspace, log)
