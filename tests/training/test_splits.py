"""Four disjoint, stratified, seeded splits of rows; identical rows are rows like any other."""

from __future__ import annotations

import numpy as np
import pytest

from training.datasets import Dataset
from training.errors import DataError
from training.splits import SPLIT_NAMES, row_hashes, split_dataset


def _dataset(X: np.ndarray, y: np.ndarray) -> Dataset:
    return Dataset(
        name="t",
        description="t",
        source="test",
        X=X,
        y=y,
        classes=[str(c) for c in sorted(set(y.tolist()))],
        feature_names=[f"f{i}" for i in range(X.shape[1])],
    )


def test_splits_are_disjoint_stratified_and_cover_everything() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    X[250:] = X[:50]  # 50 duplicated rows...
    y = (X[:, 0] > 0.5).astype(np.int64)  # ...with the same label
    splits = split_dataset(_dataset(X, y), seed=1)
    assert [s.name for s in splits] == list(SPLIT_NAMES)
    assert splits.disjoint
    sets = [set(s.index.tolist()) for s in splits]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not sets[i] & sets[j]
    assert sorted(np.concatenate([s.index for s in splits]).tolist()) == list(range(300))
    held_out = {h for s in splits if s.name != "train" for h in s.row_hashes.tolist()}
    assert splits.held_out_identical_to_train == sum(
        int(h in set(splits.train.row_hashes.tolist())) for s in splits if s.name != "train"
        for h in s.row_hashes.tolist()) > 0 and held_out
    for s in splits:  # stratified: every class in every split, proportions close to the whole
        assert set(s.y.tolist()) == {0, 1}
        if s.name != "train":
            assert abs(s.y.mean() - y.mean()) < 0.06
    for s in splits:
        assert np.array_equal(row_hashes(s.X, s.y), s.row_hashes)


def test_a_large_group_of_identical_rows_is_spread_like_any_other_rows() -> None:
    """Titanic-like: one profile repeated 128 times (a missing age) must not land whole in one split."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 2))
    X[:128] = np.nan
    y = np.where(np.arange(600) < 128, 0, (X[:, 0] > 0).astype(np.int64))
    splits = split_dataset(_dataset(X, y), seed=0)
    for s in splits:
        share = np.isnan(s.X[:, 0]).mean()
        assert abs(share - 128 / 600) < 0.05, (s.name, share)


def test_same_seed_same_split_other_seed_other_split() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 3)), rng.integers(0, 3, 200)
    a, b, c = (split_dataset(_dataset(X, y), seed=s) for s in (5, 5, 6))
    assert np.array_equal(a.test.index, b.test.index)
    assert not np.array_equal(a.test.index, c.test.index)
    assert a.test.info(["0", "1", "2"]) == b.test.info(["0", "1", "2"])


def test_class_too_small_for_four_splits() -> None:
    X = np.arange(60, dtype=np.float64).reshape(30, 2)
    y = np.array([0] * 23 + [1] * 7)
    with pytest.raises(DataError, match="class '1' has only 7 rows"):
        split_dataset(_dataset(X, y), seed=0)
