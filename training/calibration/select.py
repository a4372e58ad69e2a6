"""Fit a calibration method by name, and ``auto``: the method with the best out-of-fold proper score.

``auto`` means the same for every family: each candidate -- ``none`` (the raw model) included -- is
fitted on K-1 folds of the calibration rows' responses and scored on the held-out fold; the candidate
with the lowest mean Brier score wins (ties: the simpler, earlier in :data:`METHODS`), and the fold
scores (Brier and log loss) are recorded. The calibration rows are the dedicated calibration split, or
the out-of-fold responses of the cross-fit (``--calibration-cv K``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from training.calibration.base import Calibrator, NoCalibration
from training.calibration.ovr import BetaCalibrator, IsotonicCalibrator, SigmoidCalibrator
from training.calibration.scaling import DirichletCalibrator, TemperatureCalibrator, VectorCalibrator
from training.errors import ConfigError
from training.metrics import brier_score, log_loss_score
from training.response import ResponseKind

__all__ = ["AUTO_FOLDS", "CALIBRATORS", "METHODS", "AutoChoice", "auto_candidates", "choose_method",
           "fit_calibrator", "make_calibrator"]

CALIBRATORS: dict[str, type[Calibrator]] = {
    c.method: c
    for c in (NoCalibration, SigmoidCalibrator, TemperatureCalibrator, BetaCalibrator, IsotonicCalibrator,
              VectorCalibrator, DirichletCalibrator)
}
#: every method name accepted by ``--calibration``
METHODS = (*CALIBRATORS, "auto")
#: folds of the out-of-fold comparison behind ``auto``
AUTO_FOLDS = 5
#: methods that scale the logit matrix (temperature needs the model's logits, see the trainer)
MULTICLASS_ONLY = ("vector", "dirichlet")


def make_calibrator(method: str, n_classes: int, kind: ResponseKind) -> Calibrator:
    try:
        cls = CALIBRATORS[method]
    except KeyError:
        raise ConfigError(
            f"unknown calibration method {method!r}", f"use one of {', '.join(METHODS)}"
        ) from None
    return cls(n_classes, kind)


def fit_calibrator(
    method: str, R: np.ndarray, y: np.ndarray, n_classes: int, kind: ResponseKind
) -> Calibrator:
    """Fit ``method`` (not ``auto``) on the response ``R`` [N, K] and class indices ``y``."""
    return make_calibrator(method, n_classes, kind).fit(np.asarray(R, np.float64), np.asarray(y, np.int64))


def auto_candidates(n_classes: int, kind: ResponseKind, logits: bool | None = None) -> list[str]:
    """What ``auto`` compares: every method that applies (temperature only for models with logits)."""
    out = ["none", "sigmoid", "beta", "isotonic"]
    if kind == "margin" if logits is None else logits:
        out.insert(2, "temperature")
    if n_classes > 2:
        out += list(MULTICLASS_ONLY)
    return out


@dataclass(frozen=True)
class AutoChoice:
    method: str
    brier: dict[str, float]
    log_loss: dict[str, float]
    folds: int
    rows: int

    def describe(self) -> str:
        scores = ", ".join(f"{m} {self.brier[m]:.5f}" for m in self.brier)
        return (f"auto: lowest out-of-fold Brier ({self.folds} folds over {self.rows} calibration rows) "
                f"among {scores} -> {self.method}")


def choose_method(R: np.ndarray, y: np.ndarray, n_classes: int, kind: ResponseKind, seed: int,
                  methods: list[str] | None = None) -> AutoChoice:
    """Score each candidate out of fold; the lowest mean Brier wins (ties: earlier candidate)."""
    methods = methods or auto_candidates(n_classes, kind)
    R, y = np.asarray(R, np.float64), np.asarray(y, np.int64)
    folds = int(min(AUTO_FOLDS, np.bincount(y, minlength=n_classes).min()))
    if folds < 2:
        return AutoChoice("sigmoid" if "sigmoid" in methods else methods[0], {}, {}, 0, len(y))
    plan = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(R, y))
    brier: dict[str, float] = {}
    loss: dict[str, float] = {}
    for m in methods:
        P = np.zeros((len(y), n_classes))
        for fit_rows, held in plan:
            P[held] = fit_calibrator(m, R[fit_rows], y[fit_rows], n_classes, kind).predict_proba(R[held])
        brier[m], loss[m] = brier_score(y, P), log_loss_score(y, P)
    best = min(methods, key=lambda m: (round(brier[m], 10), methods.index(m)))
    return AutoChoice(best, brier, loss, folds, len(y))
