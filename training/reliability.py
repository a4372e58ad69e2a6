"""Reliability diagrams (before vs after calibration) written as a PNG with matplotlib's Agg backend.

Each point of the calibrated curve is labeled with its bin's row count (on a 36-row test split most
points are one or two rows, and the diagram should say so); a panel is titled by the class name alone.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["panel_title", "plot_reliability", "reliability_curve"]


def reliability_curve(
    hit: np.ndarray, prob: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per non-empty bin: mean predicted probability, observed frequency and row count; and the
    one-vs-rest ECE."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1], right=True), 0, bins - 1)
    xs, ys, ns, ece = [], [], [], 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            xs.append(prob[mask].mean())
            ys.append(hit[mask].mean())
            ns.append(int(mask.sum()))
            ece += abs(xs[-1] - ys[-1]) * mask.mean()
    return np.array(xs), np.array(ys), np.array(ns, dtype=np.int64), float(ece)


def panel_title(classes: list[str], k: int) -> str:
    """The panel of class ``k``: its name (binary: the positive class, said so)."""
    return f"{classes[k]} (positive class)" if len(classes) == 2 else str(classes[k])


def plot_reliability(
    path: Path,
    y: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    classes: list[str],
    bins: int,
    title: str,
) -> None:
    """One panel for binary (positive class), one per class (one-vs-rest) for multiclass."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    panels = [1] if len(classes) == 2 else list(range(len(classes)))
    cols = min(len(panels), 5)
    rows = math.ceil(len(panels) / cols)
    side = 5.0 if len(panels) == 1 else 3.2
    fig, axes = plt.subplots(rows, cols, figsize=(side * cols, side * rows), squeeze=False)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    for ax, k in zip(axes.ravel(), panels, strict=False):
        hit = (y == k).astype(np.float64)
        ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--", label="perfect")
        for probs, label, style in ((before, "before", "o-"), (after, "after", "s-")):
            xs, ys, ns, ece = reliability_curve(hit, probs[:, k], bins)
            ax.plot(xs, ys, style, ms=4, lw=1.4, label=f"{label} (class ECE {ece:.3f})")
        for x, y_, n in zip(xs, ys, ns, strict=True):  # the calibrated curve's rows per bin
            ax.annotate(f"n={n}", (x, y_), textcoords="offset points", xytext=(3, -9), fontsize=6)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(panel_title(classes, k), fontsize=9)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper left")
    fig.supxlabel("predicted probability", fontsize=8)
    fig.supylabel("observed frequency", fontsize=8)
    fig.suptitle(title, fontsize=10)
    left = 0.14 if len(panels) == 1 else 0.08
    fig.subplots_adjust(left=left, right=0.98, bottom=0.12, top=0.86, wspace=0.35, hspace=0.45)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
