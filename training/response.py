"""What a calibrator reads from a fitted model: its *response*, the same for every family.

- a model with logits (``decision_scores`` [N, C] with ``softmax = predict_proba``, the MLP; or
  ``decision_function``, scikit-learn's margins) answers with them: kind ``"margin"``;
- any other model answers with ``predict_proba``: kind ``"probability"``.

Binary responses are one column (the positive class's margin ``S1 - S0`` / decision value, or its
probability); multiclass responses have C columns. This is what scikit-learn's
``CalibratedClassifierCV`` feeds its calibrators (``decision_function`` first, else
``predict_proba``), extended to the MLP's logits, and what every exporter's ``kind="response"`` graph
outputs.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = ["ResponseKind", "has_logits", "response", "response_kind", "response_method"]

ResponseKind = Literal["margin", "probability"]


def response_method(estimator: Any) -> str:
    """``decision_scores``, ``decision_function`` or ``predict_proba``: what :func:`response` calls."""
    if hasattr(estimator, "decision_scores"):
        return "decision_scores"
    if hasattr(estimator, "decision_function"):
        return "decision_function"
    return "predict_proba"


def has_logits(estimator: Any) -> bool:
    """True when ``estimator`` exposes logits (``decision_scores`` or ``decision_function``)."""
    return response_method(estimator) != "predict_proba"


def response_kind(estimator: Any) -> ResponseKind:
    return "margin" if has_logits(estimator) else "probability"


def response(estimator: Any, X: np.ndarray) -> np.ndarray:
    """The calibrator's input [N, K] (float64): K = 1 for binary, K = C for multiclass."""
    method = response_method(estimator)
    n_classes = len(estimator.classes_)
    if method == "decision_scores":
        S = np.asarray(estimator.decision_scores(X), dtype=np.float64)
        return (S[:, 1] - S[:, 0]).reshape(-1, 1) if n_classes == 2 else S
    if method == "decision_function":
        return np.asarray(estimator.decision_function(X), dtype=np.float64).reshape(len(X), -1)
    P = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    return P[:, 1:] if n_classes == 2 else P
