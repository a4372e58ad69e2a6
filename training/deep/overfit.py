"""Overfit-one-batch: the first sanity check of a deep model (Josh Tobin's troubleshooting table).

A correct model with enough capacity drives the training loss of ONE small minibatch to (almost) zero
and classifies it perfectly. When it cannot, the shape of the error curve points at the bug:

========== ====================================================================================
sign       probable causes
========== ====================================================================================
goes up    flipped sign of the loss or gradient; learning rate too high; softmax over the wrong axis
explodes   numerical issue (exp, log, division); learning rate too high
oscillates data or labels corrupted (zeroed, badly shuffled or preprocessed); learning rate too high
plateaus   learning rate too low; gradients not flowing (zeros/ones init, dead units); too much
           regularization; wrong input to the loss (probabilities instead of logits); corrupted labels
========== ====================================================================================
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from sklearn.base import clone
from sklearn.utils.validation import check_X_y

from training.datasets import load_dataset
from training.deep.errors import DeepConfigError
from training.deep.estimator import MLPClassifier, resolve_device
from training.deep.optimizers import make_optimizer
from training.families import bind_inputs, get_family
from training.splits import split_dataset

__all__ = [
    "CAUSES",
    "OverfitReport",
    "format_overfit_report",
    "overfit_check",
    "overfit_one_batch",
    "run_overfit_check",
]

Sign = Literal["overfits", "goes up", "explodes", "oscillates", "plateaus"]

CAUSES: dict[str, list[str]] = {
    "goes up": [
        "flipped sign of the loss function or of the gradient",
        "learning rate too high",
        "softmax taken over the wrong dimension",
    ],
    "explodes": [
        "numerical issue: check every exp, log and division",
        "learning rate too high",
    ],
    "oscillates": [
        "data or labels corrupted (zeroed, incorrectly shuffled or preprocessed)",
        "learning rate too high",
    ],
    "plateaus": [
        "learning rate too low",
        "gradients not flowing through the whole model (zeros/ones initializer, dead units)",
        "too much regularization (dropout, L1/L2)",
        "incorrect input to the loss function (probabilities instead of logits)",
        "data or labels corrupted",
    ],
}


class OverfitReport(BaseModel):
    """What happened when training on one minibatch."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    sign: Sign
    causes: list[str]
    batch_rows: int
    steps: int
    initial_loss: float
    final_loss: float
    min_loss: float
    final_accuracy: float
    losses: list[float]
    message: str


def _classify(losses: list[float], initial: float) -> Sign:
    arr = np.asarray(losses, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or arr.max() > max(100.0 * initial, 50.0):
        return "explodes"
    tail = arr[len(arr) // 2 :]
    final = float(np.mean(arr[-max(1, len(arr) // 10) :]))
    if final > initial * 1.1:
        return "goes up"
    diffs = np.diff(tail)
    if len(diffs) > 2:
        turns = np.mean(np.sign(diffs[1:]) != np.sign(diffs[:-1]))
        amplitude = float(np.std(diffs)) / max(float(np.mean(np.abs(tail))), 1e-12)
        if turns >= 0.3 and amplitude > 0.05:
            return "oscillates"
    return "plateaus"


def _config_hints(est: MLPClassifier, sign: Sign) -> list[str]:
    hints: list[str] = []
    if sign == "plateaus":
        if est.initializer in ("zeros", "ones"):
            hints.append(f"this model uses initializer={est.initializer!r}: symmetric weights learn alike")
        if est.dropout >= 0.5 or est.l1 > 1e-2 or est.l2 > 1e-2:
            hints.append(f"this model's regularization is strong (dropout={est.dropout}, l1={est.l1}, "
                         f"l2={est.l2})")
        if est.learning_rate < 1e-5:
            hints.append(f"this model's learning_rate={est.learning_rate} is very small")
    if sign in ("explodes", "oscillates", "goes up") and est.learning_rate >= 0.5:
        hints.append(f"this model's learning_rate={est.learning_rate} is large")
    return hints


def overfit_one_batch(estimator: MLPClassifier, X: Any, y: Any, batch_size: int | None = None,
                      steps: int = 300, seed: int = 0) -> OverfitReport:
    """Train a fresh copy of ``estimator`` on one minibatch for ``steps`` steps and judge the curve.

    The monitored error is the plain data loss (cross-entropy) of the batch, whatever the objective the
    estimator's ``_compute_loss`` optimizes — so a flipped loss sign shows as an error that goes up.
    """
    if not isinstance(steps, int) or steps < 10:
        raise DeepConfigError("steps", steps, "an integer >= 10")
    est: MLPClassifier = clone(estimator)
    est._validate_params()
    X, y = check_X_y(X, y, dtype=np.float32)
    size = int(batch_size or est.batch_size)
    if size < 2:
        raise DeepConfigError("batch_size", size, "an integer >= 2 for the one-batch check")
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(X))[:size]
    Xb, yb = X[rows], y[rows]
    est.classes_, y_idx = np.unique(yb, return_inverse=True)
    if len(est.classes_) < 2:
        raise DeepConfigError("batch", f"{size} rows of one class", "a batch with at least 2 classes",
                              "raise batch_size or shuffle the data")
    est.n_features_in_ = X.shape[1]
    est.sigmoid_head_ = len(est.classes_) == 2 and est.head != "softmax"
    est.device_ = resolve_device(est.device)
    torch.manual_seed(seed)
    est._build(Xb)
    xt = torch.as_tensor(Xb, device=est.device_)
    yt = torch.as_tensor(y_idx, dtype=torch.long, device=est.device_)
    optimizer = make_optimizer(est.optimizer, est.network_.parameters(), est.learning_rate, est.momentum)
    initial, _ = est._evaluate(xt, yt)
    losses: list[float] = []
    accuracy = 0.0
    for _ in range(steps):
        est.network_.train()
        est._train_step(optimizer, xt, yt)
        loss, accuracy = est._evaluate(xt, yt)
        losses.append(loss)
        if not math.isfinite(loss):
            break
    final = losses[-1]
    finite = [v for v in losses if math.isfinite(v)]
    passed = math.isfinite(final) and accuracy == 1.0 and final <= max(0.05, 0.1 * initial)
    sign: Sign = "overfits" if passed else _classify(losses, initial)
    causes = [] if passed else CAUSES[sign] + _config_hints(est, sign)
    if passed:
        message = (f"can overfit one batch of {size} rows: loss {initial:.4g} -> {final:.4g}, "
                   f"accuracy {accuracy:.0%} after {len(losses)} steps")
    else:
        message = (f"cannot overfit one batch of {size} rows: the error {sign} (loss {initial:.4g} -> "
                   f"{final:.4g}, accuracy {accuracy:.0%} after {len(losses)} steps); probable causes: "
                   + "; ".join(causes))
    return OverfitReport(
        passed=passed, sign=sign, causes=causes, batch_rows=size, steps=len(losses),
        initial_loss=float(initial), final_loss=float(final),
        min_loss=float(min(finite)) if finite else float("nan"), final_accuracy=float(accuracy),
        losses=[float(v) for v in losses], message=message,
    )


def format_overfit_report(report: OverfitReport) -> str:
    """Human-readable lines for the CLI."""
    lines = [("PASS " if report.passed else "FAIL ") + report.message]
    if not report.passed:
        lines.append(f"sign: error {report.sign}")
        lines += [f"  - {c}" for c in report.causes]
    return "\n".join(lines)


def overfit_check(config: Any, steps: int = 300) -> OverfitReport:
    """``lockgate train --overfit-one-batch``: the family's default model on one batch of the train split.

    ``config`` is a :class:`training.config.TrainConfig`; only deep families (``mlp``) apply.
    """
    ds = load_dataset(config.data, config.seed, config.target, config.segment, config.missing)
    family = bind_inputs(get_family(config.model), ds.inputs, ds.feature_names)
    est = family.make_estimator(dict(family.defaults), config.seed)
    if not isinstance(est, MLPClassifier):
        raise DeepConfigError("model", config.model, "a deep model family for --overfit-one-batch",
                              "use --model mlp, cnn, gru, lstm or multi")
    splits = split_dataset(ds, config.seed, config.validation_fraction, config.calibration_fraction,
                           config.test_fraction)
    return overfit_one_batch(est, splits.train.X, splits.train.y, steps=steps, seed=config.seed)


def run_overfit_check(config: Any) -> int:
    """Print the one-batch diagnosis; exit code 0 when the model can overfit, 1 when it cannot."""
    report = overfit_check(config)
    print(format_overfit_report(report))
    return 0 if report.passed else 1
