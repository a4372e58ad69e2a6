"""Fit the calibrator on the calibration split only: none | sigmoid (Platt) | isotonic | temperature | auto.

The native calibrated model is scikit-learn's ``CalibratedClassifierCV(FrozenEstimator(model))``: the
base model stays frozen, one calibrator per class (one for binary) maps its ``decision_function`` (or
``predict_proba`` when it has none) to a probability, and multiclass rows are renormalized.

``temperature`` (Guo et al. 2017) divides the model's logits by one ``T > 0`` fitted by minimizing the
log loss on the calibration split, ``softmax(S / T)``: the ranking and the predicted class never change.
It needs scores whose softmax is the model's own probabilities (:func:`training.export.score_response`:
``decision_scores`` or ``decision_function``), so it is refused for families that have none (forests,
naive Bayes, ensembles). The fit is :func:`training.deep.calibrators.fit_calibrator`.

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

from training.errors import ConfigError, TrainingError
from training.export import score_response
from training.metrics import calibration_metrics
from training.splits import Split

__all__ = [
    "ISOTONIC_KNOT_FACTOR",
    "ISOTONIC_MIN_ROWS",
    "METHODS",
    "Calibrated",
    "TemperatureScaled",
    "calibrate",
    "check_method_supported",
    "merge_close_knots",
    "supports_temperature",
    "temperature_nodes",
]

METHODS = ("none", "sigmoid", "isotonic", "temperature", "auto")
#: the largest |softmax(scores) - predict_proba| for the scores to count as the model's logits
SCORE_CONSISTENCY = 1e-6

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


class TemperatureScaled:
    """A frozen estimator whose probabilities are ``softmax(S / T)`` of its logits ``S``."""

    def __init__(self, estimator: Any, temperature: float) -> None:
        self.estimator = estimator
        self.temperature_ = float(temperature)
        self.classes_ = estimator.classes_

    def _scores(self, X: np.ndarray) -> np.ndarray:
        d = score_response(self.estimator, X)
        return np.column_stack([np.zeros(len(d)), d[:, 0]]) if len(self.classes_) == 2 else d

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        from training.deep.calibrators import softmax

        return softmax(self._scores(X) / self.temperature_)


def temperature_nodes(scores: str, n_classes: int, temperature: float) -> tuple[list, list, str]:
    """ONNX nodes, initializers and output name of ``softmax(S / T)`` reading float64 ``scores``.

    Binary ``scores`` are the one margin ``d`` [N, 1], turned into ``S = [0, d]``. The nodes are the deep
    package's :meth:`training.deep.calibrators.ScoreCalibrator.to_onnx`, with float64 constants.
    """
    from training.deep.calibrators import ScoreCalibrator
    from training.deep.onnx_graph import GraphBuilder

    b = GraphBuilder("lg_temp")
    if n_classes == 2:
        scores = b.concat([b.op("Mul", [scores, b.const(0.0, np.float64, hint="zero")]), scores])
    cal = ScoreCalibrator(method="temperature", n_classes=n_classes, temperature=float(temperature))
    probs = cal.to_onnx(b, scores, np.float64)
    return b.nodes, b.initializers, probs


def supports_temperature(estimator: Any) -> bool:
    """True when ``estimator`` exposes logits (``decision_scores`` or ``decision_function``)."""
    return hasattr(estimator, "decision_scores") or hasattr(estimator, "decision_function")


def check_method_supported(family: str, estimator: Any, method: str) -> None:
    """Refuse ``temperature`` for a family without logits, before any training (``estimator`` unfitted)."""
    if method != "temperature" or supports_temperature(estimator):
        return
    from training.families import family_names, get_family

    able = []
    for name in family_names():
        fam = get_family(name)
        try:
            if supports_temperature(fam.make_estimator(dict(fam.defaults), 0)):
                able.append(name)
        except Exception:  # noqa: BLE001 - a plugin family that cannot be built is simply not listed
            continue
    raise ConfigError(
        f"calibration 'temperature' needs the model's logits (decision_function or decision_scores) and "
        f"the {family} family has none (its probabilities are not a softmax of scores)",
        f"use --calibration sigmoid, isotonic, auto or none with {family}, or --calibration temperature "
        f"with one of {', '.join(able)}",
    )


def _fit_temperature(estimator: Any, cal: Split) -> TemperatureScaled:
    from training.deep.calibrators import fit_calibrator, softmax

    if not supports_temperature(estimator):
        raise ConfigError(
            f"calibration 'temperature' needs logits and {type(estimator).__name__} has no "
            "decision_function/decision_scores",
            "use --calibration sigmoid, isotonic, auto or none",
        )
    n_classes = len(estimator.classes_)
    scaled = TemperatureScaled(estimator, 1.0)
    S = scaled._scores(cal.X)
    gap = float(np.max(np.abs(softmax(S) - np.asarray(estimator.predict_proba(cal.X), dtype=np.float64))))
    if not gap <= SCORE_CONSISTENCY:
        raise TrainingError(
            f"calibration 'temperature' needs scores whose softmax is the model's probabilities; "
            f"{type(estimator).__name__}'s differ from predict_proba by {gap:.3g}",
            "use --calibration sigmoid, isotonic, auto or none with this model",
        )
    fitted = fit_calibrator("temperature", S, np.asarray(cal.y, dtype=np.int64), n_classes)
    scaled.temperature_ = fitted.temperature
    return scaled


def _fit(estimator: Any, method: str, cal: Split) -> Any:
    if method == "none":
        return estimator
    if method == "temperature":
        return _fit_temperature(estimator, cal)
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
            "temperature": f"temperature scaling requested: softmax(logits / T), T fitted by log loss on "
            f"the {n}-row calibration split",
        }[requested]
        if requested == "isotonic" and n < ISOTONIC_MIN_ROWS:
            reason += f" (note: fewer than {ISOTONIC_MIN_ROWS} rows, isotonic may overfit)"
        native = _fit(estimator, requested, cal)
        if requested == "temperature":
            reason += f"; T = {native.temperature_:.4g}" + (
                " (> 1: the model was over-confident)" if native.temperature_ > 1 else
                " (< 1: the model was under-confident)" if native.temperature_ < 1 else ""
            )
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
