"""Adversarial validation: can a classifier tell training rows from test rows?

As the chapter describes it: stack the training and the test rows, label them 0 (train) / 1 (test) and
train a classifier to tell them apart — the original label column counts as one more feature when both
files have it. Every row gets an out-of-fold probability of "looks like test" (k-fold, so no row is
scored by a model that saw it). Then

- the ROC AUC says how different the two sets are (0.5: indistinguishable; near 1: shifted);
- the training rows that look most like test rows are proposed as the validation split;
- the training rows that look least like test rows are flagged (they may not represent production).

The report is JSON-ready and can be stored under ``card.details['shift']`` of a bundle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from training.errors import DeepConfigError, DeepTrainingError

__all__ = ["ShiftReport", "adversarial_validation", "read_pair", "store_in_card"]

#: AUC at or above which the two sets are called shifted
SHIFT_AUC = 0.6
MIN_ROWS = 20


class ShiftReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    auc: float
    shifted: bool
    threshold: float
    verdict: str
    train_rows: int
    test_rows: int
    features: list[str]
    label_as_feature: str | None
    folds: int
    top_features: dict[str, float]
    proposed_validation_rows: list[int]
    proposed_validation_scores: list[float]
    flagged_train_like_rows: list[int]
    flagged_train_like_scores: list[float]


def read_pair(train_csv: Path | str, test_csv: Path | str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read both CSVs; refuse mismatched columns with the difference spelled out."""
    frames = []
    for path in (train_csv, test_csv):
        path = Path(path)
        if not path.is_file():
            raise DeepTrainingError(f"{path} does not exist or is not a file", "pass the path of a CSV file")
        try:
            frames.append(pd.read_csv(path))
        except (ValueError, UnicodeDecodeError) as e:
            raise DeepTrainingError(f"{path} is not a readable CSV: {e}", "save it as UTF-8 CSV") from None
    train, test = frames
    missing = sorted(set(train.columns) - set(test.columns))
    extra = sorted(set(test.columns) - set(train.columns))
    if missing or extra:
        raise DeepTrainingError(
            f"the CSVs have different columns: only in train {missing}, only in test {extra}",
            "give both files the same columns (same names)",
        )
    return train, test[list(train.columns)]


def _encode(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    both = pd.concat([train, test], ignore_index=True)
    cols = []
    for name in both.columns:
        col = both[name]
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            cols.append(col.astype(float).to_numpy())
        else:
            codes, _ = pd.factorize(col.astype(str), sort=True)
            cols.append(codes.astype(float))
    X = np.column_stack(cols)
    X[~np.isfinite(X)] = np.nan
    return X


def adversarial_validation(train: pd.DataFrame, test: pd.DataFrame, target: str | None = None,
                           validation_fraction: float = 0.2, flag_fraction: float = 0.1, folds: int = 5,
                           seed: int = 0) -> ShiftReport:
    """Run adversarial validation; ``target`` (if given and present) is used as a feature too."""
    if not 0 < validation_fraction < 1:
        raise DeepConfigError("validation_fraction", validation_fraction, "a number in (0, 1)")
    if not 0 < flag_fraction < 1:
        raise DeepConfigError("flag_fraction", flag_fraction, "a number in (0, 1)")
    if not isinstance(folds, int) or folds < 2:
        raise DeepConfigError("folds", folds, "an integer >= 2", "e.g. folds=5")
    if list(train.columns) != list(test.columns):
        raise DeepTrainingError("train and test have different columns", "give both the same columns")
    if target is not None and target not in train.columns:
        raise DeepConfigError("target", target, f"a column of the CSVs: {', '.join(map(str, train.columns))}")
    if min(len(train), len(test)) < max(MIN_ROWS, folds):
        raise DeepTrainingError(f"too few rows ({len(train)} train, {len(test)} test) for adversarial "
                                f"validation", f"provide at least {max(MIN_ROWS, folds)} rows in each")
    X = _encode(train, test)
    is_test = np.r_[np.zeros(len(train), int), np.ones(len(test), int)]
    clf = RandomForestClassifier(n_estimators=50, min_samples_leaf=3, max_features="sqrt", n_jobs=1,
                                 random_state=seed)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    X = np.nan_to_num(X, nan=-1e9)  # missing values as their own (extreme) value
    p_test = cross_val_predict(clf, X, is_test, cv=cv, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(is_test, p_test))
    clf.fit(X, is_test)
    importance = clf.feature_importances_
    names = [str(c) for c in train.columns]
    order = np.argsort(-importance, kind="stable")
    top = {names[j]: round(float(importance[j]), 6) for j in order[: min(10, len(names))]}
    scores = p_test[: len(train)]
    n_val = max(1, int(round(validation_fraction * len(train))))
    n_flag = max(1, int(round(flag_fraction * len(train))))
    most_test_like = np.argsort(-scores, kind="stable")[:n_val]
    most_train_like = np.argsort(scores, kind="stable")[:n_flag]
    shifted = auc >= SHIFT_AUC
    verdict = (
        f"shift detected: a classifier tells test from training rows with AUC {auc:.3f} (>= {SHIFT_AUC}); "
        f"most telling features: {', '.join(list(top)[:3])}. Validate on the {n_val} most test-like "
        "training rows, and review the flagged train-like rows."
        if shifted else
        f"no detectable shift: AUC {auc:.3f} (< {SHIFT_AUC}), training and test rows look alike"
    )
    return ShiftReport(
        auc=round(auc, 6), shifted=shifted, threshold=SHIFT_AUC, verdict=verdict,
        train_rows=len(train), test_rows=len(test), features=names,
        label_as_feature=target, folds=folds, top_features=top,
        proposed_validation_rows=[int(i) for i in most_test_like],
        proposed_validation_scores=[round(float(scores[i]), 6) for i in most_test_like],
        flagged_train_like_rows=[int(i) for i in most_train_like],
        flagged_train_like_scores=[round(float(scores[i]), 6) for i in most_train_like],
    )


def store_in_card(bundle_dir: Path | str, report: ShiftReport) -> Path:
    """Write ``report`` into ``card.details['shift']`` of the bundle (atomically; model.onnx untouched)."""
    from cascade_registry.artifacts import CARD_FILE, ModelBundle, write_json_atomic

    card = ModelBundle.read_card(bundle_dir)
    details: dict[str, Any] = {**card.details, "shift": report.model_dump()}
    path = Path(bundle_dir) / CARD_FILE
    write_json_atomic(path, card.model_copy(update={"details": details}))
    return path
