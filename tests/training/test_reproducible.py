"""Same seed + data -> byte-identical model.onnx and identical metrics; another seed -> another model.

Two families on one calibration split, one with the default cross-fitted ensemble (K folds, K pairs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascade_registry.artifacts import ModelBundle
from training import TrainConfig, train


@pytest.mark.parametrize(
    "family, calibration, folds",
    [("random_forest", "isotonic", 0), ("hist_gradient_boosting", "sigmoid", 0), ("svm", "sigmoid", 5)],
    ids=["random_forest-isotonic", "hist_gradient_boosting-sigmoid", "svm-sigmoid-cross-fitted"],
)
def test_same_seed_same_bytes_and_metrics(tmp_path: Path, family: str, calibration: str, folds: int) -> None:
    def run(out: str, seed: int = 3) -> ModelBundle:
        config = TrainConfig(
            data="wine",
            model=family,
            calibration=calibration,
            calibration_cv=folds,
            trials=2,
            seed=seed,
            out=tmp_path / out,
            progress=False,
        )
        return ModelBundle.load(train(config))

    a, b = run("a"), run("b")
    assert (a.path / "model.onnx").read_bytes() == (b.path / "model.onnx").read_bytes()
    assert a.card.metrics == b.card.metrics
    assert a.card.calibration == b.card.calibration
    assert a.card.dataset == b.card.dataset
    assert [c.score for c in a.card.search.candidates] == [c.score for c in b.card.search.candidates]
    other = run("c", seed=4)
    assert other.onnx_sha256 != a.onnx_sha256
    assert other.card.dataset.splits["test"].sha256 != a.card.dataset.splits["test"].sha256
