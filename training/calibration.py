"""Fit the calibrator on the calibration split only: none | sigmoid (Platt) | isotonic | auto.

The native calibrated model is scikit-learn's ``CalibratedClassifierCV(FrozenEstimator(model))``: the
base model stays frozen, one calibrator per class (one for binary) maps its ``decision_function`` (or
``predict_proba`` when it has none) to a probability, and multiclass rows are renormalized.

``auto`` fits sigmoid (and isotonic when the calibration split has at least
:data:`ISOTONIC_MIN_ROWS` rows; with fewer it overfits) and keeps the one with the lowest Brier score on
the validation split, which the calibrator never saw.

Isotonic knots a hair apart (relative to the exported graph's measured score error) are merged before
export, see :func:`merge_close_knots`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.metrics import calibration_metrics
from training.splits import Split

__all__ = ["ISOTONIC_KNOT_FACTOR", "ISOTONIC_MIN_ROWS", "Calibrated", "calibrate", "merge_close_knots"]

ISOTONIC_MIN_ROWS = 1000
#: isotonic knots closer than this many times the export's score error are merged (merge_close_knots)
ISOTONIC_KNOT_FACTOR = 1e4


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


def merge_close_knots(native: Any, score_error: tuple[float, float]) -> int:
    """Make an isotonic calibrator robust to ``score_error`` (the exported graph's error on its input).

    Isotonic regression on over-confident scores (naive Bayes probabilities of 1 - 1e-12 vs 1 - 1e-10)
    yields knots a hair apart, i.e. near-vertical segments that turn rounding noise in the score into
    probability jumps. ``score_error = (absolute, relative)`` is the export's measured error model;
    each run of knots closer than ``ISOTONIC_KNOT_FACTOR * (absolute + relative * |x|)`` becomes one
    jump of that width, which bounds every slope so that the noise moves a probability by at most
    ~2e-4 x the step; the fit changes only inside those hair-wide intervals. Mutates the fitted
    calibrators and rebuilds their interpolators, so scikit-learn's own ``predict_proba`` stays the
    native reference. Returns the number of knots removed.
    """
    if not hasattr(native, "calibrated_classifiers_"):
        return 0
    absolute, relative = score_error
    removed = 0
    for iso in native.calibrated_classifiers_[0].calibrators:
        if hasattr(iso, "X_thresholds_"):
            removed += _merge(iso, ISOTONIC_KNOT_FACTOR * absolute, ISOTONIC_KNOT_FACTOR * relative)
    return removed


def _merge(iso: Any, absolute: float, relative: float) -> int:
    """Replace each cluster of knots narrower than the tolerance by one jump of the tolerance's width.

    The cluster's left value and right value are kept; the jump is centred on the cluster and never
    crosses the midpoint to a neighbouring knot nor the fitted range, so the function only changes
    within half a tolerance of the jump.
    """
    x = np.asarray(iso.X_thresholds_, dtype=np.float64)
    y = np.asarray(iso.y_thresholds_, dtype=np.float64)
    if len(x) < 2:
        return 0
    groups: list[list[int]] = [[0]]
    for i in range(1, len(x)):
        first = x[groups[-1][0]]
        if x[i] - first < absolute + relative * max(abs(first), abs(x[i])):
            groups[-1].append(i)
        else:
            groups.append([i])
    if len(groups) == len(x):
        return 0
    new_x: list[float] = []
    new_y: list[float] = []
    for gi, g in enumerate(groups):
        xs, xe = float(x[g[0]]), float(x[g[-1]])
        if len(g) == 1:
            new_x.append(xs)
            new_y.append(float(y[g[0]]))
            continue
        half = (absolute + relative * max(abs(xs), abs(xe))) / 2
        centre = (xs + xe) / 2
        lo = max(centre - half, (new_x[-1] + xs) / 2 if new_x else xs)
        nxt = float(x[groups[gi + 1][0]]) if gi + 1 < len(groups) else None
        hi = min(centre + half, (xe + nxt) / 2 if nxt is not None else xe)
        new_x += [lo, hi]
        new_y += [float(y[g[0]]), float(y[g[-1]])]
    xs_arr, ys_arr = np.array(new_x), np.array(new_y)
    iso.X_thresholds_, iso.y_thresholds_ = xs_arr, ys_arr
    iso.X_min_, iso.X_max_ = float(xs_arr[0]), float(xs_arr[-1])
    iso._build_f(xs_arr, ys_arr)
    return len(x) - len(xs_arr)


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
