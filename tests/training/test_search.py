"""Random search: seeded, defaults first, every candidate recorded, the right winner per metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from cascade_registry.artifacts import ModelBundle
from training import ExportError, TrainConfig, train
from training.families import (
    Family,
    FloatRange,
    family_names,
    get_family,
    register_family,
    unregister_family,
)
from training.search import random_search
from training.splits import Split


def _splits() -> tuple[Split, Split]:
    X, y = load_breast_cancer(return_X_y=True)
    tr, va = np.arange(0, 300), np.arange(300, 450)
    return (
        Split("train", tr, X[tr], y[tr], None, np.array([str(i) for i in tr])),
        Split("validation", va, X[va], y[va], None, np.array([str(i) for i in va])),
    )


@pytest.mark.parametrize("metric", ["f1_macro", "log_loss", "cohen_kappa", "accuracy"])
def test_winner_is_the_best_candidate_for_the_metric(metric: str) -> None:
    train_split, validation = _splits()
    family = get_family("logistic_regression")
    result = random_search(family, train_split, validation, metric, trials=5, seed=2, progress=False)
    info = result.info
    scores = [c.score for c in info.candidates]
    best = min(scores) if metric == "log_loss" else max(scores)
    assert info.best_value == best and info.trials == 5 and len(result.per_candidate_seconds) == 5
    assert info.candidates[0].params == info.defaults  # candidate 1 = the defaults
    assert len({c.params["C"] for c in info.candidates}) == 5  # the others are sampled
    assert all(1e-3 <= c.params["C"] <= 1e2 for c in info.candidates)
    assert info.best_params == info.candidates[scores.index(best)].params
    again = random_search(family, train_split, validation, metric, trials=5, seed=2, progress=False)
    assert [c.params for c in again.info.candidates] == [c.params for c in info.candidates]


def test_families_are_pluggable() -> None:
    base = get_family("naive_bayes")
    name = "naive_bayes_test_copy"
    copy = Family(
        name=name,
        description="copy",
        space={"var_smoothing": FloatRange(1e-10, 1e-8, log=True)},
        defaults={"var_smoothing": 1e-9},
        make_estimator=base.make_estimator,
        export=base.export,
    )
    register_family(copy)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_family(base)
        assert get_family(name).description == "copy" and name in family_names()
        assert TrainConfig(model=name).model == name
    finally:
        unregister_family(name)
    assert name not in family_names()


def test_failed_export_leaves_nothing(tmp_path: Path) -> None:
    # an impossible parity limit makes the export step refuse the graph after everything else ran
    with pytest.raises(ExportError, match="differs from the native model"):
        train(TrainConfig(model="random_forest", trials=1, calibration_cv=0, parity_limit=1e-30, out=tmp_path,
                          progress=False))
    assert list(tmp_path.iterdir()) == []


def test_imbalanced_synthetic_set(tmp_path: Path) -> None:
    card = ModelBundle.load(
        train(
            TrainConfig(
                data="imbalanced",
                model="naive_bayes",
                calibration="sigmoid",
                calibration_cv=0,
                trials=1,
                out=tmp_path,
                progress=False,
            )
        )
    ).card
    assert card.classes == ["negative", "positive"] and card.dataset.rows == 2000
    assert card.dataset.source == "synthetic:make_classification"
    counts = card.dataset.splits["test"].class_counts
    assert counts["positive"] < 0.2 * counts["negative"]  # stratified: the imbalance is kept
