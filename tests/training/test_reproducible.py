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
