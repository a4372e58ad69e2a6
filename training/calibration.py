"""Fit the calibrator on the calibration split only: none | sigmoid (Platt) | isotonic | auto.

The native calibrated model is scikit-learn's ``CalibratedClassifierCV(FrozenEstimator(model))``: the
base model stays frozen, one calibrator per class (one for binary) maps its ``decision_function`` (or
``predict_proba`` when it has none) to a probability, and multiclass rows are renormalized.

``auto`` fits sigmoid (and isotonic when the calibration split has at least
:data:`ISOTONIC_MIN_ROWS` rows; with fewer it overfits) and keeps the one with the lowest Brier score on
the validation split, which the calibrator never saw.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.metrics import calibration_metrics
from training.splits import Split

__all__ = ["ISOTONIC_MIN_ROWS", "Calibrated", "calibrate"]

ISOTONIC_MIN_ROWS = 1000


@dataclass(frozen=True)
class Calibrated:
    native: Any  # has predict_proba; the estimator itself for "none"
    method: str
    requested: str
    reason: str
    seconds: float

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.native.predict_proba(X), dtype=np.float64)


def _fit(estimator: Any, method: str, cal: Split) -> Any:
    if method == "none":
        return estimator
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    model = CalibratedClassifierCV(FrozenEstimator(estimator), method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(cal.X, cal.y)
    return model


def calibrate(estimator: Any, requested: str, cal: Split, validation: Split, bins: int) -> Calibrated:
    """Calibrate ``estimator`` as ``requested``; the reason for the choice is recorded."""
    start = time.perf_counter()
    n = len(cal.y)
    if requested != "auto":
        reason = {
            "none": "calibration disabled on request: probabilities are the model's own",
            "sigmoid": f"Platt scaling requested; fitted on the {n}-row calibration split",
            "isotonic": f"isotonic regression requested; fitted on the {n}-row calibration split",
        }[requested]
        if requested == "isotonic" and n < ISOTONIC_MIN_ROWS:
            reason += f" (note: fewer than {ISOTONIC_MIN_ROWS} rows, isotonic may overfit)"
        native = _fit(estimator, requested, cal)
        return Calibrated(native, requested, requested, reason, time.perf_counter() - start)
    methods = ["sigmoid"] + (["isotonic"] if n >= ISOTONIC_MIN_ROWS else [])
    fitted = {m: _fit(estimator, m, cal) for m in methods}
    brier = {
        m: calibration_metrics(validation.y, np.asarray(f.predict_proba(validation.X)), bins).brier
        for m, f in fitted.items()
    }
    chosen = min(methods, key=lambda m: (brier[m], m != "sigmoid"))
    scores = ", ".join(f"{m} {b:.5f}" for m, b in brier.items())
    if n < ISOTONIC_MIN_ROWS:
        reason = (
            f"auto: the calibration split has {n} rows (< {ISOTONIC_MIN_ROWS}), too few for isotonic "
            f"regression without overfitting, so sigmoid (Platt) was used; held-out validation "
            f"Brier: {scores}"
        )
    else:
        reason = (
            f"auto: the calibration split has {n} rows, enough for isotonic; kept the lower held-out "
            f"validation Brier ({scores}) -> {chosen}"
        )
    return Calibrated(fitted[chosen], chosen, "auto", reason, time.perf_counter() - start)
