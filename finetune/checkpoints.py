"""Resumable checkpoints, recorded in the run journal.

A checkpoint folder ``checkpoint-<step>`` holds the trainable weights
(safetensors), the optimizer, scheduler and grad-scaler state and every RNG
state (plain tensors and numbers, read back with ``weights_only=True``), and
the run's progress (losses, evaluations, best step, early-stopping count). It is
published with ``whcore.publish.publish_folder``, and only then recorded as
a ``DONE checkpoint-<step>`` journal line, so a SIGKILL at any moment leaves
the last recorded checkpoint intact and a rerun resumes from it. Only the
latest and the best checkpoints are kept on disk.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from whcore.publish import publish_folder
from whcore.journal import Journal, checkpoint_unit, unit_step

UNIT_PREFIX = "checkpoint-"
WEIGHTS_NAME = "weights.safetensors"  # trainable parameters only (LoRA: the adapters)
TRAINER_STATE_NAME = "trainer_state.pt"  # optimizer, scheduler, scaler, RNG
PROGRESS_NAME = "progress.json"


@dataclass
class Progress:
    """Where the run stands; saved with every checkpoint."""

    step: int = 0  # optimizer steps finished
    per_device_batch: int | None = None  # after any out-of-memory halving
    train_log: list[dict] = field(default_factory=list)  # {"step", "loss", "lr", "seconds"}
    evals: list[dict] = field(default_factory=list)  # {"step", "wer", "normalized_wer", "cer", ...}
    best_step: int | None = None
    best_metric: float | None = None
    evals_without_improvement: int = 0
    stopped_early: bool = False

    @classmethod
    def from_dict(cls, data: dict) -> "Progress":
        return cls(**data)


def unit_name(step: int) -> str:
    """The journal unit of the checkpoint after ``step`` steps."""
    return checkpoint_unit(step)


def checkpoint_dir(root: Path, step: int) -> Path:
    return root / f"{UNIT_PREFIX}{step}"


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    """Trainable parameters by name (tied weights appear once)."""
    return {name: p.detach().to("cpu").contiguous()
            for name, p in model.named_parameters() if p.requires_grad}


def rng_state() -> dict[str, Any]:
    """Every RNG's state in types ``torch.load(weights_only=True)`` accepts (no numpy objects)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"], numpy_state["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(root: Path, model: Any, optimizer: Any, scheduler: Any, scaler: Any,
                    progress: Progress) -> Path:
    """Write ``checkpoint-<step>`` with one ``publish_folder``; returns it.

    A folder left by a run killed between the publish and its DONE line was never
    recorded, so it is simply replaced.
    """
    from safetensors.torch import save_file

    final = checkpoint_dir(root, progress.step)
    with publish_folder(final) as tmp:
        save_file(trainable_state(model), str(tmp / WEIGHTS_NAME))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "rng": rng_state()}, tmp / TRAINER_STATE_NAME)
        (tmp / PROGRESS_NAME).write_text(json.dumps(asdict(progress), indent=1), encoding="utf-8")
    return final


def checkpoint_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def latest_recorded(journal: Journal, params: str, root: Path) -> Path | None:
    """The newest checkpoint the journal records for these params whose files are intact."""
    steps = []
    for unit in journal.entries():
        if unit_step(unit) is not None and journal.is_done(unit, params):
            steps.append(unit_step(unit))
    return checkpoint_dir(root, max(steps)) if steps else None


def load_progress(folder: Path) -> Progress:
    return Progress.from_dict(json.loads((folder / PROGRESS_NAME).read_text(encoding="utf-8")))


def load_weights(model: Any, folder: Path) -> None:
    """Load a checkpoint's trainable weights into ``model`` (same architecture and adapters)."""
    from safetensors.torch import load_file

    state = load_file(str(folder / WEIGHTS_NAME))
    missing = set(state) - {name for name, _ in model.named_parameters()}
    if missing:
        raise RuntimeError(f"checkpoint {folder} has weights the model lacks: {sorted(missing)[:3]}")
    model.load_state_dict(state, strict=False)


def load_trainer_state(folder: Path, optimizer: Any, scheduler: Any, scaler: Any) -> None:
    # weights_only: a checkpoint folder is data, and unpickling arbitrary objects from it
    # would run whatever code a tampered file names.
    state = torch.load(folder / TRAINER_STATE_NAME, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    restore_rng_state(state["rng"])


def prune(root: Path, keep_steps: set[int]) -> None:
    """Remove checkpoint folders other than ``keep_steps`` (latest and best)."""
    for folder in root.glob(f"{UNIT_PREFIX}*"):
        suffix = folder.name[len(UNIT_PREFIX):]
        if folder.is_dir() and suffix.isdigit() and int(suffix) not in keep_steps:
            shutil.rmtree(folder, ignore_errors=True)
