"""Same seed + data -> byte-identical model.onnx and identical metrics; another seed -> another model."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascade_registry.artifacts import ModelBundle
from training import TrainConfig, train


@pytest.mark.parametrize(
    "family, calibration",
    [("random_forest", "isotonic"), ("hist_gradient_boosting", "sigmoid"), ("svm", "sigmoid")],
)
def test_same_seed_same_bytes_and_metrics(tmp_path: Path, family: str, calibration: str) -> None:
    def run(out: str, seed: int = 3) -> ModelBundle:
        config = TrainConfig(
            data="wine",
            model=family,
            calibration=calibration,
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


def test_parallel_search_and_folds_give_the_same_bytes(tmp_path: Path) -> None:
    """``jobs=2`` fits the trials and the cross-fit folds in two worker processes: same ONNX bytes,
    same candidate scores and the same winner as one at a time."""

    def run(out: str, jobs: int) -> ModelBundle:
        config = TrainConfig(
            data="breast_cancer",
            model="logistic_regression",
            calibration="sigmoid",
            trials=3,
            calibration_cv=2,
            jobs=jobs,
            out=tmp_path / out,
            progress=False,
        )
        return ModelBundle.load(train(config))

    one, two = run("one", 1), run("two", 2)
    assert (one.path / "model.onnx").read_bytes() == (two.path / "model.onnx").read_bytes()
    assert [c.score for c in one.card.search.candidates] == [c.score for c in two.card.search.candidates]
    assert one.card.search.best_params == two.card.search.best_params
