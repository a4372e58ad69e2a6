"""What a calibrator reads from a fitted model: its *response*, the same rule for every family.

scikit-learn's ``CalibratedClassifierCV`` rule: ``decision_function`` when the model has one (kind
``"margin"``), else ``predict_proba`` (kind ``"probability"``). Binary responses are one column (the
positive class's decision value or probability); multiclass responses have C columns.

The MLP's ``decision_scores`` (logits with ``softmax = predict_proba``) are *not* its response: they
are shift-invariant, so one column alone means nothing to a one-vs-rest calibrator (measured: Platt on
them is 4x worse in Brier than on the probabilities, wine). They only make the family eligible for
temperature scaling (:func:`has_logits`), which reads ``log p`` = the logits up to that shift.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = ["ResponseKind", "has_logits", "response", "response_kind", "response_method"]

ResponseKind = Literal["margin", "probability"]


def response_method(estimator: Any) -> str:
    """``decision_function`` or ``predict_proba``: what :func:`response` calls."""
    return "decision_function" if hasattr(estimator, "decision_function") else "predict_proba"


def has_logits(estimator: Any) -> bool:
    """True when ``estimator``'s probabilities are a softmax of logits it exposes (temperature applies)."""
    return hasattr(estimator, "decision_scores") or hasattr(estimator, "decision_function")


def response_kind(estimator: Any) -> ResponseKind:
    return "margin" if response_method(estimator) == "decision_function" else "probability"


def response(estimator: Any, X: np.ndarray) -> np.ndarray:
    """The calibrator's input [N, K] (float64): K = 1 for binary, K = C for multiclass."""
    n_classes = len(estimator.classes_)
    if response_method(estimator) == "decision_function":
        return np.asarray(estimator.decision_function(X), dtype=np.float64).reshape(len(X), -1)
    P = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    return P[:, 1:] if n_classes == 2 else P
