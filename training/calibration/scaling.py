"""Scaling calibrators on the logit matrix ``L`` (:func:`training.calibration.base.logit_matrix`).

- ``temperature`` (Guo et al. 2017): ``softmax(L / T)``, one ``T`` in ``[e^-4, e^4]`` fitted by log
  loss; the ranking and the predicted class never change. A ``T`` at its bound is reported as a warning.
- ``vector`` scaling (Guo et al. 2017): ``softmax(L * w + c)``, one weight and bias per class.
- ``dirichlet`` (Kull et al. 2019, matrix scaling with ODIR): ``softmax(L @ W + c)`` on the
  log-probabilities, off-diagonal weights and biases L2-regularized (:data:`ODIR_LAMBDA`).

All three are fitted by L-BFGS on the mean log loss with analytic gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from training.calibration.base import Calibrator, logit_matrix, logit_matrix_onnx, softmax
from training.graph import GraphBuilder

__all__ = ["ODIR_LAMBDA", "TEMPERATURE_LOG_BOUND", "DirichletCalibrator", "TemperatureCalibrator",
           "VectorCalibrator"]

TEMPERATURE_LOG_BOUND = 4.0
ODIR_LAMBDA = 1e-3


def _nll(P: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(P[np.arange(len(y)), y], 1e-15, None))))


class TemperatureCalibrator(Calibrator):
    method = "temperature"

    def fit(self, R: np.ndarray, y: np.ndarray) -> TemperatureCalibrator:
        L = logit_matrix(np.asarray(R, np.float64), self.n_classes, self.kind)
        b = TEMPERATURE_LOG_BOUND
        res = minimize_scalar(lambda t: _nll(softmax(L / np.exp(t)), y), bounds=(-b, b), method="bounded",
                              options={"xatol": 1e-8})
        self.log_temperature_ = float(res.x)
        self.temperature_ = float(np.exp(res.x))
        return self

    def predict_proba(self, R: np.ndarray) -> np.ndarray:
        return softmax(logit_matrix(np.asarray(R, np.float64), self.n_classes, self.kind) / self.temperature_)

    def to_onnx(self, b: GraphBuilder, r: str) -> str:
        L = logit_matrix_onnx(b, r, self.n_classes, self.kind)
        return b.softmax(b.op("Div", [L, b.const(self.temperature_)]))

    def params(self) -> dict[str, Any]:
        return {"temperature": self.temperature_}

    def warnings(self) -> list[str]:
        if abs(self.log_temperature_) >= TEMPERATURE_LOG_BOUND - 1e-3:
            return [f"temperature T = {self.temperature_:.4g} sits at its bound "
                    f"e^±{TEMPERATURE_LOG_BOUND:g}: the logits carry (almost) no calibratable signal; "
                    "use another calibration method"]
        return []


class _AffineSoftmax(Calibrator):
    """``softmax(L @ W + c)``; subclasses choose the shape of ``W`` and the penalty."""

    def _unpack(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _penalty(self, W: np.ndarray, c: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        return 0.0, np.zeros_like(W), np.zeros_like(c)

    def _start(self) -> np.ndarray:
        raise NotImplementedError

    def _grad_pack(self, gW: np.ndarray, gc: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit(self, R: np.ndarray, y: np.ndarray) -> _AffineSoftmax:
        L = logit_matrix(np.asarray(R, np.float64), self.n_classes, self.kind)
        onehot = np.eye(self.n_classes)[y]
        n = len(y)

        def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
            W, c = self._unpack(w)
            Z = L @ W + c
            Z = Z - Z.max(axis=1, keepdims=True)
            logP = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
            G = (np.exp(logP) - onehot) / n
            pen, pW, pc = self._penalty(W, c)
            value = float(-np.sum(onehot * logP) / n) + pen
            return value, self._grad_pack(L.T @ G + pW, G.sum(axis=0) + pc)

        res = minimize(loss, self._start(), jac=True, method="L-BFGS-B", options={"maxiter": 500})
        self.W_, self.c_ = self._unpack(res.x)
        return self

    def predict_proba(self, R: np.ndarray) -> np.ndarray:
        L = logit_matrix(np.asarray(R, np.float64), self.n_classes, self.kind)
        return softmax(L @ self.W_ + self.c_)

    def to_onnx(self, b: GraphBuilder, r: str) -> str:
        L = logit_matrix_onnx(b, r, self.n_classes, self.kind)
        z = b.op("Add", [b.op("MatMul", [L, b.const(self.W_)]), b.const(self.c_.reshape(1, -1))])
        return b.softmax(z)

    def params(self) -> dict[str, Any]:
        return {"W": self.W_.round(8).tolist(), "c": self.c_.round(8).tolist()}


class VectorCalibrator(_AffineSoftmax):
    method = "vector"

    def _unpack(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        C = self.n_classes
        return np.diag(w[:C]), w[C:]

    def _start(self) -> np.ndarray:
        return np.concatenate([np.ones(self.n_classes), np.zeros(self.n_classes)])

    def _grad_pack(self, gW: np.ndarray, gc: np.ndarray) -> np.ndarray:
        return np.concatenate([np.diag(gW), gc])


class DirichletCalibrator(_AffineSoftmax):
    method = "dirichlet"

    def _unpack(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        C = self.n_classes
        return w[: C * C].reshape(C, C), w[C * C:]

    def _start(self) -> np.ndarray:
        return np.concatenate([np.eye(self.n_classes).ravel(), np.zeros(self.n_classes)])

    def _grad_pack(self, gW: np.ndarray, gc: np.ndarray) -> np.ndarray:
        return np.concatenate([gW.ravel(), gc])

    def _penalty(self, W: np.ndarray, c: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        off = W - np.diag(np.diag(W))
        return (ODIR_LAMBDA * (float(np.sum(off**2)) + float(np.sum(c**2))),
                2 * ODIR_LAMBDA * off, 2 * ODIR_LAMBDA * c)
