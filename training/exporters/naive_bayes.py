"""Gaussian naive Bayes: skl2onnx for its probabilities, our own graph for its per-class log-odds.

Isotonic calibration reads the log-odds (``response(..., monotone=True)``, :mod:`training.response`):
on digits the joint log-likelihoods reach 1e8, so probabilities round to within 1e-11 of 1 and the
graph's float64 rounding (up to 3.7e-9 in p) would reorder rows an isotonic step separates. The graph
computes scikit-learn's joint log-likelihood ``log prior_k - sum_j [log(2 pi var_kj) + (x_j - theta_kj)^2
/ var_kj] / 2`` in float64, then ``J_k - logsumexp_{j != k} J_j`` (binary: ``J_1 - J_0``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.exporters.skl import sklearn_exporter
from training.graph import BaseGraph, GraphBuilder, Kind, base_model

__all__ = ["export_naive_bayes"]

_PROBABILITIES = sklearn_exporter(double=True)


def export_naive_bayes(estimator: Any, n_features: int, n_classes: int, kind: Kind) -> BaseGraph:
    if kind != "monotone_response":
        return _PROBABILITIES(estimator, n_features, n_classes, kind)
    b = GraphBuilder("nb")
    x = b.op("Reshape", [b.double("input"), b.const([-1, 1, n_features], np.int64)])
    theta, var = np.asarray(estimator.theta_, np.float64), np.asarray(estimator.var_, np.float64)
    centred = b.op("Sub", [x, b.const(theta[None])])
    sq = b.op("Div", [b.op("Mul", [centred, centred]), b.const(var[None])])
    bias = np.log(estimator.class_prior_) - 0.5 * np.sum(np.log(2.0 * np.pi * var), axis=1)
    summed = b.op("ReduceSum", [sq, b.const([2], np.int64)], keepdims=0)
    J = b.op("Add", [b.op("Mul", [summed, b.const(-0.5)]), b.const(bias[None])])
    out = b.op("Sub", [b.column(J, 1), b.column(J, 0)]) if n_classes == 2 else _log_odds(b, J, n_classes)
    return BaseGraph(
        model=base_model(b, n_features, out, "naive_bayes_log_odds"), output=out,
        precision="float32 input cast once to float64; joint log-likelihoods and log-odds in float64",
        converter="lockgate naive Bayes log-odds builder",
    )


def _log_odds(b: GraphBuilder, J: str, n_classes: int) -> str:
    """``J_k - logsumexp_{j != k} J_j`` [N, C], stably (max subtracted; the diagonal masked to -inf)."""
    mask = np.where(np.eye(n_classes, dtype=bool), -np.inf, 0.0)[None]
    others = b.op("Add", [b.op("Reshape", [J, b.const([-1, 1, n_classes], np.int64)]), b.const(mask)])
    top = b.op("ReduceMax", [others], axes=[2], keepdims=1)
    total = b.op("ReduceSum", [b.op("Exp", [b.op("Sub", [others, top])]), b.const([2], np.int64)], keepdims=0)
    lse = b.op("Add", [b.op("Log", [total]), b.op("Reshape", [top, b.const([-1, n_classes], np.int64)])])
    return b.op("Sub", [J, lse])
