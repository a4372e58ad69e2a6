"""Exporters: a fitted model -> a :class:`training.graph.BaseGraph` (its probabilities or response).

- :mod:`training.exporters.skl`: skl2onnx for scikit-learn estimators and pipelines;
- :mod:`training.exporters.margin`: the SVM's margins (and their squashing);
- :mod:`training.exporters.trees`: our own ``TreeEnsembleRegressor`` for histogram gradient boosting;
- :mod:`training.exporters.forest`: our own ``TreeEnsembleClassifier`` for random forests;
- :mod:`training.exporters.naive_bayes`: skl2onnx, or our own graph of naive Bayes's log-odds.

The torch exporter lives with the deep family (``training.deep.export``), the only place torch is imported.
"""

from training.exporters.forest import export_random_forest
from training.exporters.margin import MarginClassifier, export_margin_classifier
from training.exporters.naive_bayes import export_naive_bayes
from training.exporters.skl import base_error, floor_to_float32, sklearn_exporter
from training.exporters.trees import export_hist_gradient_boosting

__all__ = [
    "MarginClassifier",
    "base_error",
    "export_margin_classifier",
    "export_naive_bayes",
    "export_hist_gradient_boosting",
    "export_random_forest",
    "floor_to_float32",
    "sklearn_exporter",
]
