"""What a valid answer is: ``label`` int64 [N] in [0, C) and ``probabilities`` [N, C], finite, in [0, 1],
rows summing to 1."""

from __future__ import annotations

import numpy as np

__all__ = ["answer_problem"]


def answer_problem(
    outputs: dict[str, np.ndarray], rows: int, n_classes: int, prob_tol: float = 1e-6, sum_tol: float = 1e-4
) -> str | None:
    """Why ``outputs`` is not a valid answer for ``rows`` input rows, or None when it is."""
    label, probs = outputs.get("label"), outputs.get("probabilities")
    if label is None or probs is None:
        return f"outputs {sorted(outputs)} lack 'label' or 'probabilities'"
    if label.shape != (rows,):
        return f"label has shape {list(label.shape)}, expected [{rows}]"
    if probs.shape != (rows, n_classes):
        return f"probabilities has shape {list(probs.shape)}, expected [{rows}, {n_classes}]"
    if rows == 0:
        return None
    if not np.issubdtype(label.dtype, np.integer):
        return f"label is {label.dtype}, expected int64"
    if label.min() < 0 or label.max() >= n_classes:
        return f"label holds values outside [0, {n_classes})"
    if not np.issubdtype(probs.dtype, np.floating):
        return f"probabilities is {probs.dtype}, expected float32"
    bad = ~np.isfinite(probs).all(axis=1)
    if bad.any():
        return f"{int(bad.sum())} of {rows} rows hold NaN or inf probabilities"
    if probs.min() < -prob_tol or probs.max() > 1 + prob_tol:
        return f"probabilities outside [0, 1] (min {probs.min():.3g}, max {probs.max():.3g})"
    sums = probs.astype(np.float64).sum(axis=1)
    worst = float(np.abs(sums - 1).max())
    if worst > sum_tol:
        return f"rows sum to 1 only within {worst:.3g} (> {sum_tol:g})"
    return None
