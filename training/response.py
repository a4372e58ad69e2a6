"""What a calibrator reads from a fitted model: its *response*, the same rule for every family.

scikit-learn's ``CalibratedClassifierCV`` rule: ``decision_function`` when the model has one (kind
``"margin"``), else ``predict_proba`` (kind ``"probability"``). Binary responses are one column (the
positive class's decision value or probability); multiclass responses have C columns.

The MLP's ``decision_scores`` (logits with ``softmax = predict_proba``) are *not* its response: they
are shift-invariant, so one column alone means nothing to a one-vs-rest calibrator (measured: Platt on
them is 4x worse in Brier than on the probabilities, wine). They only make the family eligible for
temperature scaling (:func:`has_logits`), which reads ``log p`` = the logits up to that shift.

A calibrator invariant to monotone transforms of each column (isotonic) may ask for a finer score
(``monotone=True``): models with joint log-likelihoods (naive Bayes) then give the per-class log-odds
``log p_k - log(1 - p_k)`` instead of ``p_k`` -- the same order, but not rounded to 1 where the
log-likelihoods reach 1e8 (digits), so the exported graph's rounding does not reorder the rows.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy.special import logsumexp

__all__ = [
    "ResponseKind",
    "has_log_odds",
    "has_logits",
    "log_odds_from_joint",
    "response",
    "response_kind",
    "response_method",
]

#: "log_odds": per-class ``log p_k - log(1 - p_k)`` of a probability model (``monotone=True``)
ResponseKind = Literal["margin", "probability", "log_odds"]


def response_method(estimator: Any) -> str:
    """``decision_function`` or ``predict_proba``: what :func:`response` calls."""
    return "decision_function" if hasattr(estimator, "decision_function") else "predict_proba"


def has_logits(estimator: Any) -> bool:
    """True when ``estimator``'s probabilities are a softmax of logits it exposes (temperature applies)."""
    return hasattr(estimator, "decision_scores") or hasattr(estimator, "decision_function")


def response_kind(estimator: Any) -> ResponseKind:
    return "margin" if response_method(estimator) == "decision_function" else "probability"


def has_log_odds(estimator: Any) -> bool:
    """True when a monotone-invariant calibrator reads ``estimator``'s log-odds (see the module doc)."""
    return response_method(estimator) == "predict_proba" and hasattr(estimator, "predict_joint_log_proba")


def log_odds_from_joint(J: np.ndarray) -> np.ndarray:
    """Per-class log-odds [N, K] from joint log-likelihoods [N, C] (binary: K = 1, the positive class)."""
    if J.shape[1] == 2:
        return (J[:, 1] - J[:, 0]).reshape(-1, 1)
    others = np.where(np.eye(J.shape[1], dtype=bool)[None], -np.inf, J[:, None, :])
    return J - logsumexp(others, axis=2)


def response(estimator: Any, X: np.ndarray, monotone: bool = False) -> np.ndarray:
    """The calibrator's input [N, K] (float64): K = 1 for binary, K = C for multiclass.

    ``monotone``: the calibrator only uses each column's order (:func:`has_log_odds`).
    """
    n_classes = len(estimator.classes_)
    if monotone and has_log_odds(estimator):
        return log_odds_from_joint(np.asarray(estimator.predict_joint_log_proba(X), dtype=np.float64))
    if response_method(estimator) == "decision_function":
        return np.asarray(estimator.decision_function(X), dtype=np.float64).reshape(len(X), -1)
    P = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    return P[:, 1:] if n_classes == 2 else P
