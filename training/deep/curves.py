"""Learning curves: train/validation loss and accuracy per epoch, as a PNG and as card details."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.figures import save_png

__all__ = ["curves_details", "plot_learning_curves"]


def curves_details(history: list[dict[str, float]], best_epoch: int, stop_reason: str) -> dict[str, Any]:
    """The learning curves in a JSON-friendly shape for ``card.details['learning_curves']``."""
    keys = [k for k in history[0] if k != "epoch"] if history else []
    return {
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "stop_reason": stop_reason,
        "exported": f"the checkpoint of epoch {best_epoch} (best validation metric)",
        **{k: [round(float(row.get(k, float("nan"))), 6) for row in history] for k in keys},
    }


def plot_learning_curves(history: list[dict[str, float]], best_epoch: int, path: Path | str) -> Path:
    """Write loss and accuracy per epoch (train vs validation) to ``path`` atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for split, style in (("train", "-"), ("val", "--")):
            key = f"{split}_{metric}"
            if history and key in history[0]:
                ax.plot(epochs, [row[key] for row in history], style, label=split)
        ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
    fig.suptitle("learning curves")
    fig.tight_layout()
    return save_png(fig, path)
