"""The ``Calibrator`` interface: fit on a model's response, predict probabilities, emit its own ONNX.

A calibrator maps the response ``R`` [N, K] of :mod:`training.response` (K = 1 for binary, C for
multiclass; kind ``"margin"`` or ``"probability"``) to class probabilities [N, C] in float64, in NumPy
(:meth:`Calibrator.predict_proba`, the native reference) and as ONNX nodes reading the float64 response
(:meth:`Calibrator.to_onnx`) -- the same formula twice, so the two agree to rounding.

Two views of a response are shared by every calibrator here:

- :func:`logit_matrix` ``L`` [N, C] with ``softmax(L)`` = the model's own probabilities: margins
  ``[0, d]`` (binary) or ``S`` (multiclass); probabilities ``log(max(p, 1e-12))``;
- :func:`log_odds_parts` ``(log p, log(1 - p))`` of one column (beta calibration).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from training.graph import GraphBuilder
from training.response import ResponseKind

__all__ = [
    "LOG_FLOOR",
    "Calibrator",
    "NoCalibration",
    "log_odds_parts",
    "log_odds_parts_onnx",
    "logit_matrix",
    "logit_matrix_onnx",
    "probability_matrix",
    "softmax",
]

#: probabilities are floored here before a log (random forests say exactly 0)
LOG_FLOOR = 1e-12


def softmax(L: np.ndarray) -> np.ndarray:
    Z = np.exp(L - L.max(axis=1, keepdims=True))
    return Z / Z.sum(axis=1, keepdims=True)


def probability_matrix(R: np.ndarray, n_classes: int) -> np.ndarray:
    """A probability response as [N, C] (binary: ``[1 - p, p]``)."""
    return np.column_stack([1.0 - R[:, 0], R[:, 0]]) if n_classes == 2 else R


def logit_matrix(R: np.ndarray, n_classes: int, kind: ResponseKind) -> np.ndarray:
    if kind == "margin":
        return np.column_stack([np.zeros(len(R)), R[:, 0]]) if n_classes == 2 else R
    return np.log(np.maximum(probability_matrix(R, n_classes), LOG_FLOOR))


def logit_matrix_onnx(b: GraphBuilder, r: str, n_classes: int, kind: ResponseKind) -> str:
    if kind == "margin":
        return b.concat([b.op("Mul", [r, b.const(0.0)]), r]) if n_classes == 2 else r
    P = b.complement(r) if n_classes == 2 else r
    return b.op("Log", [b.op("Max", [P, b.const(LOG_FLOOR)])])


def log_odds_parts(r: np.ndarray, kind: ResponseKind) -> tuple[np.ndarray, np.ndarray]:
    """``(log p, log(1 - p))`` of one response column (margins: ``p = sigmoid(r)``)."""
    if kind == "margin":
        return -np.logaddexp(0.0, -r), -np.logaddexp(0.0, r)
    return np.log(np.maximum(r, LOG_FLOOR)), np.log(np.maximum(1.0 - r, LOG_FLOOR))


def _softplus_onnx(b: GraphBuilder, x: str) -> str:
    """``log(1 + exp(x))`` computed stably: ``max(x, 0) + log(1 + exp(-|x|))``."""
    tail = b.op("Log", [b.op("Add", [b.const(1.0), b.op("Exp", [b.op("Neg", [b.op("Abs", [x])])])])])
    return b.op("Add", [b.op("Max", [x, b.const(0.0)]), tail])


def log_odds_parts_onnx(b: GraphBuilder, r: str, kind: ResponseKind) -> tuple[str, str]:
    if kind == "margin":
        return b.op("Neg", [_softplus_onnx(b, b.op("Neg", [r]))]), b.op("Neg", [_softplus_onnx(b, r)])
    lp = b.op("Log", [b.op("Max", [r, b.const(LOG_FLOOR)])])
    l1p = b.op("Log", [b.op("Max", [b.op("Sub", [b.const(1.0), r]), b.const(LOG_FLOOR)])])
    return lp, l1p


class Calibrator(ABC):
    """One calibration method. ``__init__`` stores its arguments; :meth:`fit` leaves state in ``_`` names."""

    method: ClassVar[str]
    #: True when the method only exists for more than two classes
    multiclass_only: ClassVar[bool] = False
    #: True when only each response column's order matters: it reads ``response(..., monotone=True)``
    monotone: ClassVar[bool] = False

    def __init__(self, n_classes: int, kind: ResponseKind) -> None:
        self.n_classes = n_classes
        self.kind = kind

    @abstractmethod
    def fit(self, R: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on the response ``R`` [N, K] of rows the model never saw, class indices ``y``."""

    @abstractmethod
    def predict_proba(self, R: np.ndarray) -> np.ndarray:
        """Calibrated probabilities [N, C] (float64)."""

    @abstractmethod
    def to_onnx(self, b: GraphBuilder, r: str) -> str:
        """Append the calibrator to ``b`` reading the float64 response ``r``; return the probabilities."""

    def params(self) -> dict[str, Any]:
        """The fitted parameters, JSON-ready (for the card)."""
        return {}

    def warnings(self) -> list[str]:
        """Fits that went wrong in a way the user should hear about (e.g. a parameter at its bound)."""
        return []


class NoCalibration(Calibrator):
    """The model's own probabilities: ``softmax(L)`` of margins, the probabilities themselves otherwise."""

    method = "none"

    def fit(self, R: np.ndarray, y: np.ndarray) -> NoCalibration:
        return self

    def predict_proba(self, R: np.ndarray) -> np.ndarray:
        R = np.asarray(R, dtype=np.float64)
        if self.kind == "margin":
            return softmax(logit_matrix(R, self.n_classes, self.kind))
        return probability_matrix(R, self.n_classes).copy()

    def to_onnx(self, b: GraphBuilder, r: str) -> str:
        if self.kind == "margin":
            if self.n_classes == 2:
                return b.complement(b.op("Sigmoid", [r]))
            return b.softmax(r)
        return b.complement(r) if self.n_classes == 2 else b.op("Identity", [r])
