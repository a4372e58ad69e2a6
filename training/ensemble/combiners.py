"""Averaging and majority vote over heterogeneous members.

Majority vote: each member votes for its most probable class; the probabilities are the vote shares.
Ties are broken by the ``tie_policy``:

- ``random``:  a random order of the classes drawn once from ``random_state`` decides every tie (the same
               order in the exported graph, so ONNX and Python agree); a tiny bonus of
               ``rank * 1e-3 / C`` votes is added to the tally before computing the shares.
- ``abstain``: :meth:`VotingEnsemble.predict_or_abstain` answers ``-1`` (and ``predict`` raises
               :class:`AbstainError`) for tied rows; the exported graph's ``label`` is ``-1`` there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.ensemble.base import EnsembleBase
from training.ensemble.members import validate_members
from training.errors import DeepConfigError, DeepTrainingError

__all__ = ["AbstainError", "AveragingEnsemble", "VotingEnsemble"]

TIE_BONUS = 1e-3


class AbstainError(DeepTrainingError):
    """A majority vote tied and the tie policy is ``abstain``."""


class AveragingEnsemble(EnsembleBase):
    """Mean (optionally weighted) of the members' class probabilities."""

    def __init__(self, members: tuple[Any, ...] = ("logistic_regression", "random_forest", "naive_bayes"),
                 weights: tuple[float, ...] | None = None, random_state: int = 0) -> None:
        self.members = members
        self.weights = weights
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> AveragingEnsemble:
        specs = validate_members(self.members)
        if self.weights is not None and (
            len(self.weights) != len(specs) or min(self.weights) < 0 or sum(self.weights) <= 0
        ):
            raise DeepConfigError("weights", self.weights,
                                  f"{len(specs)} non-negative numbers with a positive sum, or None")
        X, y_idx = self._prepare(X, y)
        self.members_ = [self._fit_member(s, X, y_idx, self.random_state) for s in specs]
        w = np.ones(len(specs)) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        self.weights_ = w / w.sum()
        self.report_ = {"weights": self.weights_.round(6).tolist()}
        return self

    def _combine(self, probas: list[np.ndarray]) -> np.ndarray:
        return sum(w * p for w, p in zip(self.weights_, probas, strict=True))


class VotingEnsemble(EnsembleBase):
    """Majority vote with a configurable tie policy (``random`` with seed, or ``abstain``)."""

    def __init__(self, members: tuple[Any, ...] = ("logistic_regression", "random_forest", "naive_bayes"),
                 tie_policy: str = "random", random_state: int = 0) -> None:
        self.members = members
        self.tie_policy = tie_policy
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> VotingEnsemble:
        if self.tie_policy not in ("random", "abstain"):
            raise DeepConfigError("tie_policy", self.tie_policy, "'random' or 'abstain'")
        specs = validate_members(self.members)
        X, y_idx = self._prepare(X, y)
        self.members_ = [self._fit_member(s, X, y_idx, self.random_state) for s in specs]
        n_classes = len(self.classes_)
        order = np.random.default_rng(self.random_state).permutation(n_classes)
        rank = np.empty(n_classes)
        rank[order] = np.arange(n_classes)[::-1]  # first class in the random order gets the top bonus
        self.tie_bonus_ = rank * TIE_BONUS / n_classes if self.tie_policy == "random" else np.zeros(n_classes)
        self.report_ = {"tie_policy": self.tie_policy,
                        "tie_order": [str(self.classes_[k]) for k in order] if self.tie_policy == "random"
                        else None}
        return self

    def votes(self, X: Any) -> np.ndarray:
        """Vote counts [N, C] (float)."""
        probas = self.member_probabilities(X)
        n_classes = len(self.classes_)
        return sum(np.eye(n_classes)[np.argmax(p, axis=1)] for p in probas)

    def _combine(self, probas: list[np.ndarray]) -> np.ndarray:
        n_classes = len(self.classes_)
        tally = sum(np.eye(n_classes)[np.argmax(p, axis=1)] for p in probas) + self.tie_bonus_
        return tally / tally.sum(axis=1, keepdims=True)

    def predict_or_abstain(self, X: Any) -> np.ndarray:
        """Class indices, ``-1`` where the vote tied and the policy is ``abstain``."""
        V = self.votes(X)
        winner = np.argmax(V + self.tie_bonus_, axis=1)
        if self.tie_policy == "abstain":
            tied = (V.max(axis=1, keepdims=True) == V).sum(axis=1) > 1
            winner = np.where(tied, -1, winner)
        return winner

    def predict(self, X: Any) -> np.ndarray:
        idx = self.predict_or_abstain(X)
        if np.any(idx < 0):
            raise AbstainError(
                f"the vote tied on {int(np.sum(idx < 0))} of {len(idx)} rows and tie_policy='abstain'",
                "use predict_or_abstain() to get -1 for those rows, or tie_policy='random'",
            )
        return self.classes_[idx]
