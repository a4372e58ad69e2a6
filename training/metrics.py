"""Quality and calibration metrics computed from labels and predicted probabilities.

ECE / MCE are top-label, equal-width binned: bins over the predicted probability of the predicted class;
ECE = sum_b (n_b / n) |accuracy_b - confidence_b|, MCE = max_b |accuracy_b - confidence_b| over non-empty
bins. Brier is the mean squared error of the probability vector against the one-hot label (scikit-learn's
``brier_score_loss``: for binary, the usual mean of (p_1 - y)^2). Log loss clips probabilities to
[1e-15, 1]. Per class (one-vs-rest): ECE / MCE binned over p_k against the indicator y == k, Brier the
mean of (p_k - [y == k])^2. This module is the one definition for the whole project.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from cascade_registry.artifacts import CalibrationMetrics, TestMetrics

__all__ = [
    "METRIC_DEFINITIONS",
    "brier_score",
    "calibration_metrics",
    "class_ece_mce",
    "ece_mce",
    "log_loss_score",
    "per_class_calibration",
    "report_metrics",
    "score",
]

METRIC_DEFINITIONS = {
    "f1_macro": "unweighted mean over classes of F1 = 2PR/(P+R); higher is better",
    "cohen_kappa": "Cohen's kappa: agreement between predicted and true labels corrected for chance; "
    "higher is better",
    "accuracy": "fraction of rows whose predicted class (argmax probability) is the true class; "
    "higher is better",
    "log_loss": "mean negative log-likelihood of the true class under the predicted probabilities; "
    "lower is better (selection maximizes its negative)",
}


def score(metric: str, y: np.ndarray, proba: np.ndarray) -> float:
    """The value of ``metric`` (as reported, log_loss not negated)."""
    pred = proba.argmax(axis=1)
    labels = list(range(proba.shape[1]))
    if metric == "f1_macro":
        return float(f1_score(y, pred, average="macro", labels=labels, zero_division=0))
    if metric == "cohen_kappa":
        value = cohen_kappa_score(y, pred, labels=labels)
        return 0.0 if np.isnan(value) else float(value)
    if metric == "accuracy":
        return float(accuracy_score(y, pred))
    if metric == "log_loss":
        return log_loss_score(y, proba)
    raise ValueError(f"unknown metric {metric!r}")


def _binned_gaps(conf: np.ndarray, hit: np.ndarray, bins: int) -> tuple[float, float]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece, mce = 0.0, 0.0
    for b in range(bins):
        mask = which == b
        if not mask.any():
            continue
        gap = abs(float(hit[mask].mean()) - float(conf[mask].mean()))
        ece += mask.mean() * gap
        mce = max(mce, gap)
    return float(ece), float(mce)


def ece_mce(y: np.ndarray, proba: np.ndarray, bins: int) -> tuple[float, float]:
    """Top-label ECE and MCE (see the module docstring)."""
    correct = (proba.argmax(axis=1) == y).astype(np.float64)
    return _binned_gaps(proba.max(axis=1), correct, bins)


def class_ece_mce(y: np.ndarray, proba: np.ndarray, k: int, bins: int) -> tuple[float, float]:
    """One-vs-rest ECE and MCE of class ``k``: p_k against the indicator y == k."""
    return _binned_gaps(proba[:, k], (y == k).astype(np.float64), bins)


def brier_score(y: np.ndarray, proba: np.ndarray) -> float:
    onehot = np.eye(proba.shape[1])[y]
    value = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    return value / 2 if proba.shape[1] == 2 else value


def log_loss_score(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.mean(np.log(p)))


def per_class_calibration(
    y: np.ndarray, proba: np.ndarray, classes: list[str], bins: int
) -> dict[str, dict[str, float]]:
    """class -> one-vs-rest ECE, MCE and Brier."""
    out = {}
    for k, name in enumerate(classes):
        ece, mce = class_ece_mce(y, proba, k, bins)
        brier = float(np.mean((proba[:, k] - (y == k)) ** 2))
        out[name] = {"ece": ece, "mce": mce, "brier": brier}
    return out


def calibration_metrics(
    y: np.ndarray, proba: np.ndarray, bins: int, classes: list[str] | None = None
) -> CalibrationMetrics:
    """ECE, MCE, Brier and log loss; per class too when ``classes`` is given."""
    ece, mce = ece_mce(y, proba, bins)
    return CalibrationMetrics(
        ece=ece,
        mce=mce,
        brier=brier_score(y, proba),
        log_loss=log_loss_score(y, proba),
        bins=bins,
        per_class={} if classes is None else per_class_calibration(y, proba, classes, bins),
    )


def _summary(y: np.ndarray, proba: np.ndarray, bins: int) -> dict[str, float]:
    cal = calibration_metrics(y, proba, bins)
    return {
        "rows": float(len(y)),
        "accuracy": score("accuracy", y, proba),
        "f1_macro": score("f1_macro", y, proba),
        "cohen_kappa": score("cohen_kappa", y, proba),
        "log_loss": cal.log_loss,
        "brier": cal.brier,
        "ece": cal.ece,
        "mce": cal.mce,
    }


def report_metrics(
    y: np.ndarray, proba: np.ndarray, classes: list[str], bins: int, segments: np.ndarray | None = None
) -> TestMetrics:
    labels = list(range(len(classes)))
    pred = proba.argmax(axis=1)
    p, r, f, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    per_class = {}
    for k, name in enumerate(classes):
        per_class[name] = {
            "precision": float(p[k]),
            "recall": float(r[k]),
            "f1": float(f[k]),
            "accuracy": float(np.mean((pred == k) == (y == k))),
            "support": float(support[k]),
        }
    slices: dict[str, dict[str, float]] = {}
    if segments is not None:
        for value in sorted(set(segments.tolist())):
            mask = segments == value
            slices[str(value)] = _summary(y[mask], proba[mask], bins)
    cal = calibration_metrics(y, proba, bins)
    return TestMetrics(
        rows=len(y),
        accuracy=score("accuracy", y, proba),
        f1_macro=float(np.mean(f)),
        precision_macro=float(np.mean(p)),
        recall_macro=float(np.mean(r)),
        cohen_kappa=score("cohen_kappa", y, proba),
        log_loss=cal.log_loss,
        brier=cal.brier,
        ece=cal.ece,
        mce=cal.mce,
        bins=bins,
        per_class=per_class,
        confusion_matrix=confusion_matrix(y, pred, labels=labels).astype(int).tolist(),
        slices=slices,
    )
