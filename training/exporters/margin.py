"""``MarginClassifier``: probabilities for a model that only has a ``decision_function`` (the SVM).

scikit-learn 1.9 deprecates ``SVC(probability=True)`` (an internal 5-fold Platt step, removed in 1.11)
in favour of explicit calibration. The SVM family therefore wraps ``SVC(probability=False)``: its
*uncalibrated* probabilities are the plain squashing of the margins — ``sigmoid(d)`` for binary,
``softmax(d)`` over the one-vs-rest decision values for multiclass — and the calibrator (fitted on the
calibration split) reads the margins themselves through ``decision_function``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from training.exporters.skl import sklearn_exporter
from training.graph import BaseGraph, Kind

__all__ = ["MarginClassifier", "export_margin_classifier"]


class MarginClassifier(ClassifierMixin, BaseEstimator):
    """Wrap a fitted-by-us classifier with ``decision_function``; add ``predict_proba`` by squashing."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: np.ndarray, y: np.ndarray) -> MarginClassifier:
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.decision_function(X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        d = np.asarray(self.decision_function(X), dtype=np.float64)
        if d.ndim == 1:
            p1 = 1.0 / (1.0 + np.exp(-d))
            return np.column_stack([1.0 - p1, p1])
        z = np.exp(d - d.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def export_margin_classifier(
    estimator: MarginClassifier, n_features: int, n_classes: int, kind: Kind
) -> BaseGraph:
    """skl2onnx for the margins (float64 inside the graph), our own squashing for ``kind="proba"``."""
    base = sklearn_exporter(double=True)(estimator.estimator_, n_features, n_classes, "response")
    if kind != "proba":  # the response is the margins
        return base
    model = base.model
    graph = model.graph
    s = base.output
    if n_classes == 2:
        graph.initializer.append(numpy_helper.from_array(np.array(1.0), "mg_one"))
        graph.node.extend(
            [
                helper.make_node("Cast", [s], ["mg_d"], to=TensorProto.DOUBLE, name="mg_cast"),
                helper.make_node("Sigmoid", ["mg_d"], ["mg_p1"], name="mg_sigmoid"),
                helper.make_node("Sub", ["mg_one", "mg_p1"], ["mg_p0"], name="mg_p0"),
                helper.make_node("Concat", ["mg_p0", "mg_p1"], ["mg_proba"], axis=1, name="mg_concat"),
            ]
        )
    else:
        graph.node.extend(
            [
                helper.make_node("Cast", [s], ["mg_d"], to=TensorProto.DOUBLE, name="mg_cast"),
                helper.make_node("Softmax", ["mg_d"], ["mg_proba"], axis=1, name="mg_softmax"),
            ]
        )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("mg_proba", TensorProto.DOUBLE, [None, n_classes]))
    return BaseGraph(
        model=model,
        output="mg_proba",
        precision=base.precision + "; uncalibrated probabilities = sigmoid/softmax of the margins",
        converter=base.converter + " (margins) + lockgate squashing",
    )
