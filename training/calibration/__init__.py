"""One ``Calibrator`` family for every model family: fitted on the model's response, emitting its ONNX.

Methods: ``none``, ``sigmoid`` (Platt), ``temperature``, ``beta``, ``isotonic`` (one-vs-rest for
multiclass), ``vector`` and ``dirichlet`` (multiclass scaling), and ``auto`` (the best out-of-fold
Brier score, ``none`` included). See :mod:`training.calibration.base` for the interface.
"""

from training.calibration.base import LOG_FLOOR, Calibrator, NoCalibration, logit_matrix, softmax
from training.calibration.ovr import BetaCalibrator, IsotonicCalibrator, SigmoidCalibrator, merge_knots
from training.calibration.scaling import DirichletCalibrator, TemperatureCalibrator, VectorCalibrator
from training.calibration.select import (
    AUTO_FOLDS,
    CALIBRATORS,
    METHODS,
    AutoChoice,
    auto_candidates,
    choose_method,
    fit_calibrator,
    make_calibrator,
)

__all__ = [
    "AUTO_FOLDS",
    "CALIBRATORS",
    "LOG_FLOOR",
    "METHODS",
    "AutoChoice",
    "BetaCalibrator",
    "Calibrator",
    "DirichletCalibrator",
    "IsotonicCalibrator",
    "NoCalibration",
    "SigmoidCalibrator",
    "TemperatureCalibrator",
    "VectorCalibrator",
    "auto_candidates",
    "choose_method",
    "fit_calibrator",
    "logit_matrix",
    "make_calibrator",
    "merge_knots",
    "softmax",
]
