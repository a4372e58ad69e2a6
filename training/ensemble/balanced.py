"""An ensemble of H resampled balanced datasets for imbalanced data.

The minority class (the smallest) is copied into every one of H datasets; every other class is shuffled
(seeded) and chunked into H parts, one per dataset. One member is fitted per dataset; the ensemble
averages their probabilities. ``report_`` records the dataset sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.ensemble.base import EnsembleBase
from training.ensemble.members import validate_members
from training.errors import DeepConfigError, DeepTrainingError

__all__ = ["MIN_MINORITY_ROWS", "BalancedEnsemble", "balanced_chunks"]

MIN_MINORITY_ROWS = 5


def balanced_chunks(y: np.ndarray, H: int, seed: int) -> list[np.ndarray]:
    """H row-index sets: all minority rows + one H-th of every other class."""
    if not isinstance(H, int | np.integer) or H < 2:
        raise DeepConfigError("H", H, "an integer >= 2 resampled datasets", "e.g. H=5")
    counts = np.bincount(y)
    present = np.flatnonzero(counts)
    minority = present[np.argmin(counts[present])]
    if counts[minority] < MIN_MINORITY_ROWS:
        raise DeepTrainingError(
            f"the minority class has {counts[minority]} rows; at least {MIN_MINORITY_ROWS} are needed to "
            "build balanced datasets",
            "collect more minority rows or use class weights instead",
        )
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[np.flatnonzero(y == minority)] for _ in range(H)]
    for c in present:
        if c == minority:
            continue
        rows = rng.permutation(np.flatnonzero(y == c))
        if len(rows) < H:
            raise DeepTrainingError(f"class index {c} has {len(rows)} rows, fewer than H={H} chunks",
                                    "lower H")
        for h, chunk in enumerate(np.array_split(rows, H)):
            parts[h].append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


class BalancedEnsemble(EnsembleBase):
    """H copies of ``base`` (a family name or estimator), each fitted on one balanced dataset."""

    def __init__(self, base: Any = "logistic_regression", H: int = 5, random_state: int = 0) -> None:
        self.base = base
        self.H = H
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> BalancedEnsemble:
        validate_members([self.base], minimum=1, what="base")
        X, y = self._prepare(X, y)
        chunks = balanced_chunks(y, self.H, self.random_state)
        self.members_ = []
        for rows in chunks:
            if len(np.unique(y[rows])) < len(self.classes_):
                raise DeepTrainingError("a balanced dataset lacks a class", "lower H")
            self.members_.append(self._fit_member(self.base, X[rows], y[rows], self.random_state))
        counts = np.bincount(y)
        self.report_ = {
            "H": int(self.H),
            "dataset_rows": [int(len(r)) for r in chunks],
            "class_counts": {str(c): int(n) for c, n in zip(self.classes_, counts, strict=True)},
            "scheme": "minority class copied into each dataset, every other class chunked into H parts",
        }
        return self

    def _combine(self, probas: list[np.ndarray]) -> np.ndarray:
        return sum(probas) / len(probas)
