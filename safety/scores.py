"""Quality scores recomputed by the gate (numpy only, same definitions as scikit-learn's defaults)."""

from __future__ import annotations

import numpy as np

__all__ = ["METRICS", "accuracy", "balanced_accuracy", "expected_calibration_error", "f1_macro", "score"]


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true == y_pred)) if len(y_true) else 0.0


def f1_macro(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro F1 over the labels in ``y_true`` or ``y_pred`` (sklearn's ``f1_score(average='macro')``)."""
    labels = np.union1d(y_true, y_pred)
    if not len(labels):
        return 0.0
    scores = []
    for k in labels:
        tp = np.sum((y_pred == k) & (y_true == k))
        fp = np.sum((y_pred == k) & (y_true != k))
        fn = np.sum((y_pred != k) & (y_true == k))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true``."""
    labels = np.unique(y_true)
    if not len(labels):
        return 0.0
    return float(np.mean([np.mean(y_pred[y_true == k] == k) for k in labels]))


METRICS = {"accuracy": accuracy, "f1_macro": f1_macro, "balanced_accuracy": balanced_accuracy}


def score(metric: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return METRICS[metric](y_true, y_pred)


def expected_calibration_error(y_true: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """Top-label ECE: |accuracy - confidence| averaged over ``bins`` equal-width confidence bins, weighted by
    the share of rows in each bin."""
    if not len(y_true):
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)
