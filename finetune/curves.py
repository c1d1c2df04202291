"""Training curves: TensorBoard event files while training, PNGs at the end.

TensorBoard is what people open during a long GPU run; the PNGs are what a
model card and a quick look need without starting a server. Both are written
beside the model (``<output>/runs/`` and ``<output>/curves/``).
"""

from __future__ import annotations

from pathlib import Path

from finetune.checkpoints import Progress
from finetune.metrics import Scores

RUNS_DIR = "runs"
CURVES_DIR = "curves"
LOSS_PNG = "loss.png"
METRICS_PNG = "metrics.png"


class CurveWriter:
    """TensorBoard scalars for train loss / learning rate and each evaluation."""

    def __init__(self, output: Path, first_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a killed run logged after its last checkpoint.
        self._writer = SummaryWriter(log_dir=str(output / RUNS_DIR),
                                     purge_step=first_step + 1 if first_step else None)

    def add_train(self, step: int, loss: float, lr: float) -> None:
        self._writer.add_scalar("train/loss", loss, step)
        self._writer.add_scalar("train/learning_rate", lr, step)

    def add_eval(self, step: int, scores: Scores) -> None:
        for name in ("wer", "normalized_wer", "cer"):
            self._writer.add_scalar(f"eval/{name}", getattr(scores, name), step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def write_pngs(progress: Progress, baseline: Scores, folder: Path) -> list[Path]:
    """loss.png and metrics.png (baseline at step 0) into ``folder``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from whcore.atomic import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([e["step"] for e in progress.train_log], [e["loss"] for e in progress.train_log],
            marker=".")
    ax.set(xlabel="optimizer step", ylabel="training loss", title="Training loss")
    ax.grid(alpha=0.3)
    written.append(_save(fig, folder / LOSS_PNG, atomic_path))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    evals = [{"step": 0, **baseline.to_dict()}] + progress.evals
    for name, label in (("wer", "WER"), ("normalized_wer", "normalised WER"), ("cer", "CER")):
        ax.plot([e["step"] for e in evals], [e[name] for e in evals], marker="o", label=label)
    ax.set(xlabel="optimizer step (0 = before training)", ylabel="% on test split",
           title="Test-split error rates")
    ax.legend()
    ax.grid(alpha=0.3)
    written.append(_save(fig, folder / METRICS_PNG, atomic_path))
    plt.close("all")
    return written


def _save(fig, path: Path, atomic_path) -> Path:  # noqa: ANN001 - matplotlib figure
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path
