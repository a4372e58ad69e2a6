"""Every ensemble as ONE ONNX graph: the members' graphs embedded side by side, combined in float64.

:func:`ensemble_exporter` is the ``training.graph.Exporter`` the family table uses (the training core
appends its calibrator); :func:`export_ensemble` builds a complete graph with a
:class:`training.calibration.Calibrator` reading the ensemble's probabilities (its response) and, for a
vote with ``tie_policy='abstain'``, ``label = -1`` on tied rows.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from training.calibration import Calibrator, NoCalibration
from training.ensemble.balanced import BalancedEnsemble
from training.ensemble.base import EnsembleBase
from training.ensemble.combiners import AveragingEnsemble, VotingEnsemble
from training.ensemble.stacking import StackingEnsemble
from training.graph import BaseGraph, GraphBuilder, base_model, embed_model, finish_model
from training.response import response

__all__ = ["ensemble_exporter", "ensemble_probabilities", "ensemble_scores", "export_ensemble"]

def _members(b: GraphBuilder, ens: EnsembleBase) -> list[str]:
    n_features, n_classes = ens.n_features_in_, len(ens.classes_)
    outs = []
    for i, member in enumerate(ens.members_):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # scikit-learn deprecations read by exporters
            base: BaseGraph = member.exporter(member.estimator, n_features, n_classes, "proba")
        out = embed_model(b, base.model, prefix=f"m{i}/")[base.output]
        outs.append(b.op("Cast", [out], to=TensorProto.DOUBLE, hint=f"m{i}_proba"))
    return outs


def _tally(b: GraphBuilder, ens: VotingEnsemble, probas: list[str]) -> str:
    n_classes = len(ens.classes_)
    classes = b.const(np.arange(n_classes).reshape(1, -1), np.int64)
    onehots = []
    for p in probas:
        winner = b.op("ArgMax", [p], axis=1, keepdims=1)
        onehots.append(b.op("Cast", [b.op("Equal", [winner, classes])], to=TensorProto.DOUBLE))
    return b.op("Sum", onehots) if len(onehots) > 1 else onehots[0]


def ensemble_probabilities(b: GraphBuilder, ens: EnsembleBase) -> str:
    """Append ``ens`` to ``b``; returns the name of its float64 probabilities [N, C]."""
    n_classes = len(ens.classes_)
    probas = _members(b, ens)
    if isinstance(ens, VotingEnsemble):
        tally = b.op("Add", [_tally(b, ens, probas), b.const(ens.tie_bonus_.reshape(1, -1), np.float64)])
        return b.normalize_rows(tally)
    if isinstance(ens, AveragingEnsemble):
        weighted = [b.op("Mul", [p, b.const(w, np.float64)])
                    for p, w in zip(probas, ens.weights_, strict=True)]
        return b.op("Sum", weighted)
    if isinstance(ens, BalancedEnsemble):
        return b.op("Div", [b.op("Sum", probas), b.const(float(len(probas)), np.float64)])
    if isinstance(ens, StackingEnsemble):
        cols = [b.column(p, 1) for p in probas] if n_classes == 2 else probas
        Z = b.concat(cols)
        coef = b.const(ens.meta_.coef_.T, np.float64)
        z = b.op("Add", [b.op("MatMul", [Z, coef]), b.const(ens.meta_.intercept_.reshape(1, -1), np.float64)])
        if n_classes == 2:
            p1 = b.op("Sigmoid", [z])
            return b.concat([b.op("Sub", [b.const(1.0, np.float64), p1]), p1])
        return b.softmax(z)
    raise TypeError(f"cannot export {type(ens).__name__}")


def ensemble_exporter(estimator: Any, n_features: int, n_classes: int, kind: str) -> BaseGraph:
    """``training.graph.Exporter`` for every ensemble (probabilities; positive column for response)."""
    b = GraphBuilder("ens")
    probs = ensemble_probabilities(b, estimator)
    if kind == "response" and n_classes == 2:
        probs = b.column(probs, 1)
    out = b.op("Identity", [probs], hint="out")
    names = ", ".join(m.name for m in estimator.members_)
    return BaseGraph(
        model=base_model(b, n_features, out, type(estimator).__name__.lower()),
        output=out,
        precision="each member as its own exporter builds it; combination in float64",
        converter=f"{type(estimator).__name__} of [{names}] composed by lockgate",
    )


def export_ensemble(ens: EnsembleBase, calibrator: Calibrator | None = None) -> onnx.ModelProto:
    """A complete graph (``label``, ``probabilities``) with ``calibrator`` on the ensemble's response."""
    n_classes = len(ens.classes_)
    b = GraphBuilder("ens")
    probs = ensemble_probabilities(b, ens)
    cal = calibrator or NoCalibration(n_classes, "probability")
    calibrated = cal.to_onnx(b, b.column(probs, 1) if n_classes == 2 else probs)
    label = None
    if isinstance(ens, VotingEnsemble) and ens.tie_policy == "abstain":
        tally = b.op("Mul", [probs, b.const(float(len(ens.members_)), np.float64)])  # shares * H = votes
        top = b.op("ReduceMax", [tally], axes=[1], keepdims=1)
        is_top = b.op("Cast", [b.op("Less", [b.op("Abs", [b.op("Sub", [tally, top])]),
                                             b.const(1e-6, np.float64)])], to=TensorProto.INT64)
        tied = b.op("Greater", [b.op("ReduceSum", [is_top, b.const([1], np.int64)], keepdims=0),
                                b.const(1, np.int64)])
        winner = b.op("ArgMax", [tally], axis=1, keepdims=0)
        label = b.op("Where", [tied, b.const(-1, np.int64), winner])
    return finish_model(b, ens.n_features_in_, calibrated, n_classes, label=label,
                        graph_name=f"lockgate-{type(ens).__name__.lower()}")


def ensemble_scores(ens: EnsembleBase, X: Any) -> np.ndarray:
    """The native counterpart of the graph's calibrator input: the ensemble's response (probabilities)."""
    return response(ens, X)
