"""One-vs-rest calibrators: one 1-D map per response column, as scikit-learn's ``CalibratedClassifierCV``.

- ``sigmoid`` (Platt 1999): ``q = sigmoid(a r + c)``, fitted by log loss on Platt's smoothed targets;
- ``isotonic``: isotonic regression, exported as its exact linear interpolation
  ``q = y_0 + sum_i slope_i (clip(r, x_i, x_{i+1}) - x_i)`` (clipped outside the fitted range); on
  log-odds (kind ``"log_odds"``) the interpolation is linear in ``p = sigmoid(r)``, as scikit-learn's on
  the probabilities, computed in log space: ``t_i = exp(log s(c) - log s(x_{i+1})) (1 - e^(x_i - c)) /
  (1 - e^(x_i - x_{i+1}))`` with ``c = clip(r, x_i, x_{i+1})``, ``s = sigmoid``;
- ``beta`` (Kull, Silva Filho & Flach 2017): ``q = sigmoid(a log p - b log(1 - p) + c)`` with
  ``a, b >= 0`` on the column's probability ``p`` (margins: ``p = sigmoid(r)``).

Binary: ``[1 - q, q]``; multiclass: the C maps' outputs renormalized (uniform where all are 0).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.isotonic import IsotonicRegression

from training.calibration.base import Calibrator, log_odds_parts, log_odds_parts_onnx
from training.graph import GraphBuilder

__all__ = ["BetaCalibrator", "IsotonicCalibrator", "OneVsRest", "SigmoidCalibrator", "merge_knots"]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _logistic_fit(F: np.ndarray, t: np.ndarray, bounds: list, start: np.ndarray) -> np.ndarray:
    """Minimize the log loss of ``sigmoid(F @ w[:-1] + w[-1])`` against targets ``t`` in [0, 1]."""
    X = np.column_stack([F, np.ones(len(t))])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ w
        ll = np.logaddexp(0, -z) * t + np.logaddexp(0, z) * (1 - t)
        return float(ll.sum()), X.T @ (_sigmoid(z) - t)

    return minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds).x


def _platt_targets(t: np.ndarray) -> np.ndarray:
    n_pos, n_neg = float(t.sum()), float(len(t) - t.sum())
    return np.where(t > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))


class OneVsRest(Calibrator):
    """Subclasses fit one column (:meth:`_fit_column`) and map it in NumPy and ONNX."""

    def _columns(self) -> list[int]:
        return [0] if self.n_classes == 2 else list(range(self.n_classes))

    def fit(self, R: np.ndarray, y: np.ndarray) -> OneVsRest:
        R = np.asarray(R, dtype=np.float64)
        positive = [1] if self.n_classes == 2 else self._columns()
        self.maps_ = [self._fit_column(R[:, k], (y == c).astype(np.float64))
                      for k, c in zip(self._columns(), positive, strict=True)]
        return self

    def predict_proba(self, R: np.ndarray) -> np.ndarray:
        R = np.asarray(R, dtype=np.float64)
        cols = zip(self._columns(), self.maps_, strict=True)
        Q = np.column_stack([self._apply(m, R[:, k]) for k, m in cols])
        if self.n_classes == 2:
            return np.column_stack([1.0 - Q[:, 0], Q[:, 0]])
        total = Q.sum(axis=1, keepdims=True)
        zero = total == 0
        return np.where(zero, 1.0 / self.n_classes, Q / np.where(zero, 1.0, total))

    def to_onnx(self, b: GraphBuilder, r: str) -> str:
        cols = []
        for k, m in zip(self._columns(), self.maps_, strict=True):
            col = r if self.n_classes == 2 else b.column(r, k)
            cols.append(self._onnx(b, m, col))
        if self.n_classes == 2:
            return b.complement(cols[0])
        return b.normalize_or_uniform(b.concat(cols), self.n_classes)

    @abstractmethod
    def _fit_column(self, r: np.ndarray, t: np.ndarray) -> Any: ...

    @abstractmethod
    def _apply(self, m: Any, r: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _onnx(self, b: GraphBuilder, m: Any, col: str) -> str: ...


class SigmoidCalibrator(OneVsRest):
    method = "sigmoid"

    def _fit_column(self, r: np.ndarray, t: np.ndarray) -> tuple[float, float]:
        n_pos, n_neg = float(t.sum()), float(len(t) - t.sum())
        prior = np.log((n_pos + 1) / (n_neg + 1))
        a, c = _logistic_fit(r.reshape(-1, 1), _platt_targets(t), [(None, None)] * 2,
                             np.array([1.0, prior]))
        return float(a), float(c)

    def _apply(self, m: tuple[float, float], r: np.ndarray) -> np.ndarray:
        return _sigmoid(m[0] * r + m[1])

    def _onnx(self, b: GraphBuilder, m: tuple[float, float], col: str) -> str:
        return b.op("Sigmoid", [b.op("Add", [b.op("Mul", [col, b.const(m[0])]), b.const(m[1])])])

    def params(self) -> dict[str, Any]:
        return {"a_c": [list(m) for m in self.maps_]}


class BetaCalibrator(OneVsRest):
    method = "beta"

    def _fit_column(self, r: np.ndarray, t: np.ndarray) -> tuple[float, float, float]:
        lp, l1p = log_odds_parts(r, self.kind)
        F = np.column_stack([lp, -l1p])
        a, b_, c = _logistic_fit(F, t, [(0.0, None), (0.0, None), (None, None)], np.array([1.0, 1.0, 0.0]))
        return float(a), float(b_), float(c)

    def _apply(self, m: tuple[float, float, float], r: np.ndarray) -> np.ndarray:
        lp, l1p = log_odds_parts(r, self.kind)
        return _sigmoid(m[0] * lp - m[1] * l1p + m[2])

    def _onnx(self, b: GraphBuilder, m: tuple[float, float, float], col: str) -> str:
        lp, l1p = log_odds_parts_onnx(b, col, self.kind)
        z = b.op("Sub", [b.op("Mul", [lp, b.const(m[0])]), b.op("Mul", [l1p, b.const(m[1])])])
        return b.op("Sigmoid", [b.op("Add", [z, b.const(m[2])])])

    def params(self) -> dict[str, Any]:
        return {"a_b_c": [list(m) for m in self.maps_]}


class IsotonicCalibrator(OneVsRest):
    method = "isotonic"
    monotone = True

    def _fit_column(self, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(r, t)
        return np.asarray(iso.X_thresholds_, np.float64), np.asarray(iso.y_thresholds_, np.float64)

    @staticmethod
    def _pieces(m: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, y = m
        lo, hi = x[:-1], x[1:]
        width = hi - lo
        slope = np.where(width > 0, (y[1:] - y[:-1]) / np.where(width > 0, width, 1.0), 0.0)
        return lo, hi, slope

    @staticmethod
    def _steps(m: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(lo, hi, rise, 1 - e^(lo - hi))`` per segment (rise 0 on a zero-width one)."""
        x, y = m
        lo, hi = x[:-1], x[1:]
        return lo, hi, np.where(hi > lo, y[1:] - y[:-1], 0.0), np.where(hi > lo, -np.expm1(lo - hi), 1.0)

    def _apply(self, m: tuple[np.ndarray, np.ndarray], r: np.ndarray) -> np.ndarray:
        if len(m[0]) < 2:
            return np.full(len(r), float(m[1][0]))
        if self.kind == "log_odds":
            lo, hi, rise, span = self._steps(m)
            c = np.clip(r[:, None], lo[None, :], hi[None, :])
            t = np.exp(log_odds_parts(c, "margin")[0] - log_odds_parts(hi, "margin")[0]) * (
                -np.expm1(lo - c)) / span
            return float(m[1][0]) + t @ rise
        lo, hi, slope = self._pieces(m)
        dx = np.clip(r[:, None], lo[None, :], hi[None, :]) - lo[None, :]
        return float(m[1][0]) + dx @ slope

    def _onnx(self, b: GraphBuilder, m: tuple[np.ndarray, np.ndarray], col: str) -> str:
        y0 = b.const(np.array([[float(m[1][0])]]))
        if len(m[0]) < 2:
            return b.op("Add", [b.op("Mul", [col, b.const(0.0)]), y0])
        lo, hi, slope = self._pieces(m)
        clipped = b.op("Max", [b.op("Min", [col, b.const(hi.reshape(1, -1))]), b.const(lo.reshape(1, -1))])
        if self.kind == "log_odds":
            _, _, rise, span = self._steps(m)
            ratio = b.op("Exp", [b.op("Sub", [log_odds_parts_onnx(b, clipped, "margin")[0],
                                              b.const(log_odds_parts(hi, "margin")[0].reshape(1, -1))])])
            below = b.op("Sub", [b.const(lo.reshape(1, -1)), clipped])
            gap = b.op("Sub", [b.const(1.0), b.op("Exp", [below])])
            t = b.op("Div", [b.op("Mul", [ratio, gap]), b.const(span.reshape(1, -1))])
            return b.op("Add", [b.op("MatMul", [t, b.const(rise.reshape(-1, 1))]), y0])
        dx = b.op("Sub", [clipped, b.const(lo.reshape(1, -1))])
        return b.op("Add", [b.op("MatMul", [dx, b.const(slope.reshape(-1, 1))]), y0])

    def params(self) -> dict[str, Any]:
        return {"knots": [len(x) for x, _ in self.maps_]}

    def merge_close_knots(self, absolute: float, relative: float) -> int:
        """Merge knots closer than ``absolute + relative * |x|`` (:func:`merge_knots`); returns #removed."""
        removed = 0
        for i, (x, y) in enumerate(self.maps_):
            nx, ny = merge_knots(x, y, absolute, relative)
            removed += len(x) - len(nx)
            self.maps_[i] = (nx, ny)
        return removed


def merge_knots(
    x: np.ndarray, y: np.ndarray, absolute: float, relative: float
) -> tuple[np.ndarray, np.ndarray]:
    """Replace each cluster of knots narrower than the tolerance by one jump of the tolerance's width.

    Isotonic regression on over-confident scores (naive Bayes probabilities of 1 - 1e-12 vs 1 - 1e-10)
    yields knots a hair apart: near-vertical segments that turn rounding noise of the exported score
    into probability jumps. The cluster's left and right values are kept; the jump is centred on the
    cluster and never crosses the midpoint to a neighbouring knot, so the function only changes within
    half a tolerance of the jump.
    """
    if len(x) < 2:
        return x, y
    groups: list[list[int]] = [[0]]
    for i in range(1, len(x)):
        first = x[groups[-1][0]]
        if x[i] - first < absolute + relative * max(abs(first), abs(x[i])):
            groups[-1].append(i)
        else:
            groups.append([i])
    if len(groups) == len(x):
        return x, y
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
    return np.array(new_x), np.array(new_y)
