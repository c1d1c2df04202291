"""Two DDP processes on the CPU: evaluation split and gathered, early stopping decided once.

``accelerate launch --cpu --num_processes 2 -m finetune`` on a tiny randomly
initialised Whisper (d_model 64, 1+1 layers, the real tokenizer) and the
finetune test fixture's audio (2 train and 2 test windows, unpacked), with
``--eval-steps 1 --patience 1`` so early stopping triggers. Checks: both
processes exit 0 (a rank that disagreed on stopping would hang in the next
all-reduce, and the launcher's timeout would end it), every evaluation
scored all test inputs (each rank transcribed its share), and the run stopped
early before ``--max-steps``. Too slow for the suite on a shared 2-core
machine (about 3 min wall there), so it is a bench.

    .venv/bin/python bench/finetune_ddp.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "finetune"))

MAX_STEPS = 4
TIMEOUT_S = 1200


def tiny_model(folder: Path) -> None:
    """A tiny random Whisper with offline-base's tokenizer, processor and generation config."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor

    from whcore.models import transformers_model_dir

    source = transformers_model_dir("offline-base")
    config = WhisperConfig.from_pretrained(source, d_model=64, encoder_layers=1, decoder_layers=1,
                                           encoder_attention_heads=2, decoder_attention_heads=2,
                                           encoder_ffn_dim=128, decoder_ffn_dim=128)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = WhisperForConditionalGeneration.from_pretrained(source).generation_config
    model.generation_config.max_length = 20  # a random model never stops on its own
    model.save_pretrained(folder)
    WhisperProcessor.from_pretrained(source).save_pretrained(folder)


def main() -> int:
    from builders import build_audiofolder, write_source_record

    root = Path(tempfile.mkdtemp(prefix="finetune-ddp-"))
    tiny_model(root / "tiny")
    workspace = root / "ws"
    build_audiofolder(workspace / "dataset", {"train": [0.0, 16.0], "test": [40.0, 56.0]})
    write_source_record(workspace)
    (workspace / "logs").mkdir(parents=True)
    command = [str(Path(sys.executable).with_name("accelerate")), "launch", "--cpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "finetune",
               "--workspace", str(workspace), "--model", str(root / "tiny"), "--max-steps", str(MAX_STEPS),
               "--eval-steps", "1", "--patience", "1", "--learning-rate", "1e-3", "--warmup-steps", "0",
               "--no-pack"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        print(f"finetune_ddp: accelerate launch exited {result.returncode} after {seconds:.0f} s")
        return 1
    results = json.loads((workspace / "model" / "results.json").read_text(encoding="utf-8"))
    samples = {e["samples"] for e in results["evals"]}
    ok = samples == {2} and results["stopped_early"] and results["steps"] < MAX_STEPS
    print(f"2 CPU processes, {seconds:.0f} s wall: {results['steps']} steps, stopped early "
          f"{results['stopped_early']}, best step {results['best_step']}, evaluations scored "
          f"{sorted(samples)} of 2 test inputs: {'OK' if ok else 'NOT OK'} (work in {root})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
