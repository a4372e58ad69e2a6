"""Fixtures for the training core's tests: small real bundles trained once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.bundles import train_bundle


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """breast_cancer, logistic regression + sigmoid, two candidates, the calibrator cross-fitted (5 folds,
    the default export): the card tests check the cross-fit record. Tests that need any small bundle
    use the shared ``trained_demo`` (tests/conftest.py) instead."""
    return train_bundle(tmp_path_factory.mktemp("demo"), calibration_cv=5)


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write a small numeric CSV (two informative features, label 'yes'/'no', segment 'a'/'b')."""

    def make(name: str = "data.csv", rows: int = 240, mutate: Callable | None = None) -> Path:
        import pandas as pd

        rng = np.random.default_rng(7)
        x1, x2, x3 = rng.normal(size=(3, rows))
        label = np.where(x1 + 0.5 * x2 + 0.3 * rng.normal(size=rows) > 0, "yes", "no")
        frame = pd.DataFrame(
            {"x1": x1, "x2": x2, "x3": x3, "region": np.where(np.arange(rows) % 2, "a", "b"), "label": label}
        )
        if mutate is not None:
            frame = mutate(frame)
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return path

    return make
