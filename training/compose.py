"""Composition: (model, calibrator) pairs -> ONE ONNX graph, and the native model it must reproduce.

``K = 1`` pair is the usual model + calibrator; ``K > 1`` pairs are the cross-fitted ensemble of
``--calibration-cv K`` (scikit-learn's ``ensemble=True``): every pair's base graph is embedded side by
side under its own prefix, its float64 response calibrated by its own calibrator, and the K probability
matrices averaged. ``label`` is the argmax of the averaged probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from training.calibration import Calibrator
from training.graph import BaseGraph, GraphBuilder, embed_model, finish_model
from training.response import response

__all__ = ["CalibratedModel", "Pair", "build_model"]


@dataclass(frozen=True)
class Pair:
    estimator: Any
    calibrator: Calibrator


@dataclass(frozen=True)
class CalibratedModel:
    """The native model: the mean over its pairs of ``calibrator(response(estimator, X))``."""

    pairs: list[Pair]

    @property
    def method(self) -> str:
        return self.pairs[0].calibrator.method

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        parts = [p.calibrator.predict_proba(response(p.estimator, X, p.calibrator.monotone))
                 for p in self.pairs]
        return np.mean(parts, axis=0) if len(parts) > 1 else parts[0]

    def uncalibrated_proba(self, X: np.ndarray) -> np.ndarray:
        parts = [np.asarray(p.estimator.predict_proba(X), dtype=np.float64) for p in self.pairs]
        return np.mean(parts, axis=0) if len(parts) > 1 else parts[0]


def build_model(
    parts: list[tuple[BaseGraph, Calibrator]],
    n_features: int,
    n_classes: int,
    doc: str,
    metadata: dict[str, str],
    graph_name: str,
    version: int = 1,
) -> onnx.ModelProto:
    """Embed every base graph (``kind="response"``), append its calibrator, average, finish the outputs."""
    b = GraphBuilder("lg")
    probs = []
    for i, (base, calibrator) in enumerate(parts):
        prefix = "" if len(parts) == 1 else f"k{i}/"
        out = embed_model(b, base.model, prefix=prefix or "m/")[base.output]
        probs.append(calibrator.to_onnx(b, b.double(out)))
    model = finish_model(b, n_features, b.mean(probs), n_classes, graph_name=graph_name)
    model.graph.doc_string = doc
    model.doc_string = doc
    model.domain = "ai.lockgate"
    model.model_version = version
    for key in sorted(metadata):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, metadata[key]
    return model
