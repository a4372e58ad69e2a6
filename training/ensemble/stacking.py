"""Stacking: a meta-model trained on out-of-fold member predictions from k >= 10 blocks.

No leakage by construction: :func:`fold_plan` cuts the rows into k disjoint blocks; for each block a
fresh clone of every member is fitted on the *other* k-1 blocks and predicts only that block
(:func:`out_of_fold_probabilities` asserts the two index sets are disjoint and every row is predicted
exactly once). The meta-model (logistic regression on the members' probabilities) has its C tuned by
cross-validation on those out-of-fold features; the members are then refitted on all rows for serving.

The report (``report_``, also in ``card.details``) says whether the stack beats every member on the
out-of-fold validation predictions (log loss; accuracy also recorded) — or that it did not.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict

from training.ensemble.base import EnsembleBase
from training.ensemble.members import build_member, validate_members
from training.errors import DeepConfigError, DeepTrainingError

__all__ = ["META_C_GRID", "StackingEnsemble", "fold_plan", "meta_features", "out_of_fold_probabilities"]

META_C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def fold_plan(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """k disjoint stratified blocks: [(fit rows, predict rows)] with predict rows = one block."""
    if not isinstance(k, int | np.integer) or k < 2:
        raise DeepConfigError("k", k, "an integer >= 2 (stacking uses k >= 10 blocks)", "e.g. k=10")
    counts = np.bincount(y)
    if counts.min() < k:
        raise DeepTrainingError(
            f"the smallest class has {counts.min()} rows, fewer than the k={k} out-of-fold blocks",
            "use fewer blocks or more data",
        )
    folds = StratifiedKFold(n_splits=int(k), shuffle=True, random_state=seed)
    return [(fit, pred) for fit, pred in folds.split(np.zeros(len(y)), y)]


def out_of_fold_probabilities(spec: Any, X: np.ndarray, y: np.ndarray, n_classes: int,
                              plan: list[tuple[np.ndarray, np.ndarray]], seed: int) -> np.ndarray:
    """Each row's probabilities from a member clone that never saw that row."""
    oof = np.full((len(y), n_classes), np.nan)
    for fit_rows, pred_rows in plan:
        if np.intersect1d(fit_rows, pred_rows).size:
            raise DeepTrainingError("a fold predicts rows it was fitted on", "report this bug")
        if not np.all(np.isnan(oof[pred_rows, 0])):
            raise DeepTrainingError("a row is predicted by two folds", "report this bug")
        _, est, _ = build_member(spec, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X[fit_rows], y[fit_rows])
        proba = np.zeros((len(pred_rows), n_classes))
        proba[:, np.asarray(est.classes_, dtype=int)] = est.predict_proba(X[pred_rows].astype(np.float32))
        oof[pred_rows] = proba
    if np.isnan(oof).any():
        raise DeepTrainingError("some rows got no out-of-fold prediction", "report this bug")
    return oof


def meta_features(probas: list[np.ndarray], n_classes: int) -> np.ndarray:
    """The meta-model's input: each member's positive-class probability (binary) or all C columns."""
    if n_classes == 2:
        return np.column_stack([p[:, 1] for p in probas])
    return np.column_stack(probas)


class StackingEnsemble(EnsembleBase):
    """Members -> out-of-fold probabilities (k blocks) -> CV-tuned logistic-regression meta-model."""

    def __init__(self, members: tuple[Any, ...] = ("logistic_regression", "random_forest", "naive_bayes"),
                 k: int = 10, meta_cv: int = 5, random_state: int = 0) -> None:
        self.members = members
        self.k = k
        self.meta_cv = meta_cv
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> StackingEnsemble:
        specs = validate_members(self.members)
        if not isinstance(self.k, int | np.integer) or self.k < 10:
            raise DeepConfigError("k", self.k, "an integer >= 10 out-of-fold blocks for stacking",
                                  "e.g. k=10")
        if not isinstance(self.meta_cv, int | np.integer) or self.meta_cv < 2:
            raise DeepConfigError("meta_cv", self.meta_cv, "an integer >= 2")
        X, y = self._prepare(X, y)
        n_classes = len(self.classes_)
        plan = fold_plan(y, int(self.k), self.random_state)
        oof = [out_of_fold_probabilities(s, X, y, n_classes, plan, self.random_state) for s in specs]
        Z = meta_features(oof, n_classes)
        search = GridSearchCV(
            LogisticRegression(max_iter=2000), {"C": list(META_C_GRID)}, scoring="neg_log_loss",
            cv=StratifiedKFold(int(self.meta_cv), shuffle=True, random_state=self.random_state),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search.fit(Z, y)
            meta_oof = cross_val_predict(
                LogisticRegression(C=search.best_params_["C"], max_iter=2000), Z, y,
                cv=StratifiedKFold(int(self.meta_cv), shuffle=True, random_state=self.random_state + 1),
                method="predict_proba",
            )
        self.meta_ = search.best_estimator_
        self.members_ = [self._fit_member(s, X, y, self.random_state) for s in specs]
        self.fold_plan_ = plan
        self.report_ = self._report(specs, oof, meta_oof, y, float(search.best_params_["C"]))
        return self

    def _report(self, specs: list[Any], oof: list[np.ndarray], meta_oof: np.ndarray, y: np.ndarray,
                C: float) -> dict[str, Any]:
        labels = list(range(len(self.classes_)))
        names = [build_member(s, self.random_state)[0] for s in specs]
        base = {n: {"log_loss": round(float(log_loss(y, p, labels=labels)), 6),
                    "accuracy": round(float(accuracy_score(y, p.argmax(axis=1))), 6)}
                for n, p in zip(names, oof, strict=True)}
        stack = {"log_loss": round(float(log_loss(y, meta_oof, labels=labels)), 6),
                 "accuracy": round(float(accuracy_score(y, meta_oof.argmax(axis=1))), 6)}
        beats = all(stack["log_loss"] < b["log_loss"] for b in base.values())
        best_name = min(base, key=lambda n: base[n]["log_loss"])
        verdict = (f"the stack beats every member on out-of-fold validation log loss "
                   f"({stack['log_loss']:.4f} < best member {best_name} {base[best_name]['log_loss']:.4f})"
                   if beats else
                   f"the stack does NOT beat every member: stack log loss {stack['log_loss']:.4f} vs best "
                   f"member {best_name} {base[best_name]['log_loss']:.4f}; "
                   f"consider serving {best_name} alone")
        return {
            "k_blocks": int(self.k),
            "validation": "out-of-fold predictions: every row predicted by models that never saw it",
            "meta_model": "logistic regression on the members' out-of-fold probabilities",
            "meta_C_grid": list(META_C_GRID),
            "meta_C": C,
            "meta_tuning": f"{self.meta_cv}-fold CV, neg log loss",
            "members_validation": base,
            "stack_validation": stack,
            "beats_every_member": beats,
            "verdict": verdict,
        }

    def _combine(self, probas: list[np.ndarray]) -> np.ndarray:
        return np.asarray(self.meta_.predict_proba(meta_features(probas, len(self.classes_))))
