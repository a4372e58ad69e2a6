"""Calibrators on score matrices, fitted in NumPy and fused into the ONNX graph as plain nodes.

A calibrator maps scores ``S`` [N, C] (with ``softmax(S)`` = the model's uncalibrated probabilities) to
calibrated probabilities:

- ``none``:        ``softmax(S)``
- ``temperature``: ``softmax(S / T)``, one ``T > 0`` fitted by minimizing the log loss (Guo et al. 2017).
- ``sigmoid``:     Platt scaling; binary ``p1 = σ(a·(S1 - S0) + b)``; multiclass one-vs-rest on the logit of
                   each class probability, then rows renormalized (as scikit-learn does).
- ``isotonic``:    isotonic regression on each class probability (binary: the positive one), expressed in
                   the graph as the exact piecewise-linear interpolation
                   ``y0 + Σ dy_i·clip((p-x_i)/dx_i, 0, 1)``.
- ``auto``:        the method with the lowest log loss in 2-fold cross-validation on the calibration rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from training.deep.errors import DeepConfigError
from training.deep.onnx_graph import GraphBuilder

__all__ = ["CALIBRATION_METHODS", "ScoreCalibrator", "fit_calibrator", "softmax"]

CALIBRATION_METHODS: tuple[str, ...] = ("none", "temperature", "sigmoid", "isotonic", "auto")
_EPS = 1e-6
_SMOOTH = 1e-9


def softmax(S: np.ndarray) -> np.ndarray:
    S = S - S.max(axis=1, keepdims=True)
    E = np.exp(S)
    return E / E.sum(axis=1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log(1 - p)


def _fit_platt(f: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Platt's method with his smoothed targets (as scikit-learn's ``_sigmoid_calibration``)."""
    n_pos, n_neg = float(t.sum()), float(len(t) - t.sum())
    target = np.where(t > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(ab: np.ndarray) -> tuple[float, np.ndarray]:
        z = ab[0] * f + ab[1]
        p = _sigmoid(z)
        ll = np.logaddexp(0, -z) * target + np.logaddexp(0, z) * (1 - target)
        g = p - target
        return float(ll.sum()), np.array([(g * f).sum(), g.sum()])

    prior = np.log((n_neg + 1) / (n_pos + 1))
    res = minimize(loss, np.array([1.0, -prior if np.isfinite(prior) else 0.0]), jac=True,
                   method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


@dataclass
class ScoreCalibrator:
    """A fitted calibrator (see the module docstring). Build with :func:`fit_calibrator`."""

    method: str
    n_classes: int
    requested: str = ""
    reason: str = ""
    temperature: float = 1.0
    platt: list[tuple[float, float]] = field(default_factory=list)
    isotonic: list[tuple[list[float], list[float]]] = field(default_factory=list)

    def _targets(self) -> list[int]:
        return [1] if self.n_classes == 2 else list(range(self.n_classes))

    def transform(self, S: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (float64)."""
        S = np.asarray(S, dtype=np.float64)
        if self.method == "temperature":
            return softmax(S / self.temperature)
        P = softmax(S)
        if self.method == "none":
            return P
        if self.method == "sigmoid":
            if self.n_classes == 2:
                a, b = self.platt[0]
                q1 = _sigmoid(a * (S[:, 1] - S[:, 0]) + b)
                return np.column_stack([1 - q1, q1])
            Q = np.column_stack([_sigmoid(a * _logit(P[:, k]) + b) for k, (a, b) in enumerate(self.platt)])
        else:
            Q = np.column_stack([np.interp(P[:, k], x, y) for k, (x, y) in zip(self._targets(),
                                                                               self.isotonic, strict=True)])
            if self.n_classes == 2:
                return np.column_stack([1 - Q[:, 0], Q[:, 0]])
        Q = Q + _SMOOTH
        return Q / Q.sum(axis=1, keepdims=True)

    def to_onnx(self, b: GraphBuilder, scores: str, dtype: type = np.float32) -> str:
        """Append the calibrator to ``b`` reading ``scores`` of ``dtype``; returns the probabilities' name.

        ``dtype`` is the element type of ``scores`` (float32 for the networks, float64 for the training
        core's margins); every constant is made in it.
        """
        def one() -> str:
            return b.const(1.0, dtype, hint="one")

        if self.method == "temperature":
            return b.softmax(b.op("Div", [scores, b.const(self.temperature, dtype)]))
        P = b.softmax(scores)
        if self.method == "none":
            return P
        if self.method == "sigmoid":
            if self.n_classes == 2:
                (a, c), = self.platt
                f = b.op("Sub", [b.column(scores, 1), b.column(scores, 0)])
                z = b.op("Add", [b.op("Mul", [f, b.const(a, dtype)]), b.const(c, dtype)])
                q1 = b.op("Sigmoid", [z])
                return b.concat([b.op("Sub", [one(), q1]), q1])
            pc = b.op("Clip", [P, b.const(_EPS, dtype), b.const(1 - _EPS, dtype)])
            f = b.op("Sub", [b.op("Log", [pc]), b.op("Log", [b.op("Sub", [one(), pc])])])
            a = b.const([[p[0] for p in self.platt]], dtype)
            c = b.const([[p[1] for p in self.platt]], dtype)
            Q = b.op("Sigmoid", [b.op("Add", [b.op("Mul", [f, a]), c])])
        else:
            cols = []
            for k, (x, y) in zip(self._targets(), self.isotonic, strict=True):
                pk = b.column(P, k)
                q = b.const([[y[0]]], dtype)
                if len(x) > 1:
                    x0, dx, dy = np.array(x[:-1]), np.diff(x), np.diff(y)
                    ramp = b.op("Div", [b.op("Sub", [pk, b.const([x0], dtype)]), b.const([dx], dtype)])
                    ramp = b.op("Clip", [ramp, b.const(0.0, dtype), b.const(1.0, dtype)])
                    step = b.op("MatMul", [ramp, b.const(dy.reshape(-1, 1), dtype)])
                    q = b.op("Add", [step, q])
                cols.append(q)
            if self.n_classes == 2:
                return b.concat([b.op("Sub", [one(), cols[0]]), cols[0]])
            Q = b.concat(cols)
        return b.normalize_rows(b.op("Add", [Q, b.const(_SMOOTH, dtype)]))

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {"method": self.method, "requested": self.requested, "reason": self.reason}
        if self.method == "temperature":
            out["temperature"] = self.temperature
        if self.method == "sigmoid":
            out["platt"] = self.platt
        if self.method == "isotonic":
            out["isotonic_knots"] = [len(x) for x, _ in self.isotonic]
        return out


def _fit(method: str, S: np.ndarray, y: np.ndarray, n_classes: int) -> ScoreCalibrator:
    cal = ScoreCalibrator(method=method, n_classes=n_classes)
    targets = cal._targets()
    if method == "temperature":
        def nll(log_t: float) -> float:
            P = softmax(S / np.exp(log_t))
            return float(-np.mean(np.log(np.clip(P[np.arange(len(y)), y], 1e-15, None))))

        cal.temperature = float(np.exp(minimize_scalar(nll, bounds=(-4, 4), method="bounded").x))
    elif method == "sigmoid":
        P = softmax(S)
        if n_classes == 2:
            cal.platt = [_fit_platt(S[:, 1] - S[:, 0], (y == 1).astype(float))]
        else:
            cal.platt = [_fit_platt(_logit(P[:, k]), (y == k).astype(float)) for k in targets]
    elif method == "isotonic":
        P = softmax(S)
        for k in targets:
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            iso.fit(P[:, k], (y == k).astype(float))
            cal.isotonic.append((iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist()))
    return cal


def _log_loss(P: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(P[np.arange(len(y)), y], 1e-15, None))))


def fit_calibrator(method: str, scores: np.ndarray, y_idx: np.ndarray, n_classes: int,
                   seed: int = 0) -> ScoreCalibrator:
    """Fit ``method`` on held-out ``scores`` [N, C] and class indices ``y_idx``."""
    if method not in CALIBRATION_METHODS:
        raise DeepConfigError("calibration", method, f"one of {', '.join(CALIBRATION_METHODS)}")
    S = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y_idx, dtype=np.int64)
    if method != "auto":
        cal = _fit(method, S, y, n_classes)
        cal.requested, cal.reason = method, "requested explicitly"
        return cal
    counts = np.bincount(y, minlength=n_classes)
    if counts.min() < 2:
        cal = _fit("temperature", S, y, n_classes)
        cal.requested, cal.reason = "auto", "too few rows per class for cross-validation; temperature"
        return cal
    losses: dict[str, float] = {}
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    for m in ("none", "temperature", "sigmoid", "isotonic"):
        losses[m] = float(np.mean([
            _log_loss(_fit(m, S[a], y[a], n_classes).transform(S[b]), y[b]) for a, b in folds.split(S, y)
        ]))
    best = min(losses, key=lambda m: (losses[m], m))
    cal = _fit(best, S, y, n_classes)
    cal.requested = "auto"
    cal.reason = "lowest 2-fold CV log loss: " + ", ".join(f"{m}={v:.4f}" for m, v in losses.items())
    return cal
