"""What every ensemble shares: the scikit-learn API, label encoding, member fitting and card extras."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

from training.ensemble.members import FittedMember, build_member
from training.errors import DeepConfigError

__all__ = ["EnsembleBase"]


class EnsembleBase(ClassifierMixin, BaseEstimator):
    """Subclasses implement ``_fit(X, y_idx)`` and ``_combine(probas) -> probabilities``."""

    def _prepare(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = check_X_y(X, y, dtype=np.float64)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise DeepConfigError("y", f"{len(self.classes_)} class", "at least 2 classes in the labels")
        self.n_features_in_ = X.shape[1]
        return X, y_idx

    def _fit_member(self, spec: Any, X: np.ndarray, y: np.ndarray, seed: int) -> FittedMember:
        name, est, exporter = build_member(spec, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        return FittedMember(name, est, exporter)

    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "members_")
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise DeepConfigError("X", f"{X.shape[1]} columns", f"{self.n_features_in_} columns as in fit")
        return X

    def member_probabilities(self, X: Any) -> list[np.ndarray]:
        X = self._check_X(X)
        return [m.proba(X.astype(np.float32)) for m in self.members_]

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._combine(self.member_probabilities(X))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def _combine(self, probas: list[np.ndarray]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def card_details(self) -> dict[str, Any]:
        """Extras for ``card.details``: the members and the ensemble's own report."""
        check_is_fitted(self, "members_")
        return {"ensemble": {"kind": type(self).__name__, "members": [m.name for m in self.members_],
                             **getattr(self, "report_", {})}}

    def card_files(self) -> dict[str, bytes]:
        return {}
