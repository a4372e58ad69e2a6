"""``lockgate train --model mlp`` and the ensemble families end in the same bundle as every other family."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from cascade_registry.artifacts import ModelBundle
from training.config import TrainConfig
from training.deep.overfit import overfit_check
from training.errors import TrainingError
from training.families import family_names, get_family
from training.graph import onnx_predict
from training.trainer import train

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


def test_families_are_registered_through_the_extension_point() -> None:
    names = family_names()
    for name in ("mlp", "averaging", "majority_vote", "stacking", "balanced_ensemble"):
        assert name in names
    mlp = get_family("mlp")
    assert {"learning_rate", "schedule", "units"} <= set(mlp.ranges())  # sensitive ones searched
    defaults = mlp.defaults
    assert defaults["units"] == 128 and defaults["layers"] == 2 and defaults["optimizer"] == "adam"


@pytest.mark.parametrize(("model", "calibration"), [("mlp", "sigmoid"), ("stacking", "isotonic")])
def test_train_writes_a_complete_bundle_with_parity(model: str, calibration: str, tmp_path) -> None:
    path = train(TrainConfig(data="breast_cancer", model=model, calibration=calibration, calibration_cv=0,
                             trials=1, seed=0, name=model, version=1, out=tmp_path, progress=False))
    bundle = ModelBundle.load(path)  # schema + sha256 of model.onnx
    card = bundle.card
    assert card.family == model and card.calibration.method == calibration
    assert card.export.parity_max_abs_diff <= 1e-4
    ref = np.load(path / "reference.npz")
    label, proba = onnx_predict(bundle.model_path.read_bytes(), ref["inputs"])
    assert np.abs(proba - ref["probabilities"]).max() <= 1e-4
    assert label.dtype == np.int64 and proba.dtype == np.float32
    assert card.metrics.accuracy > 0.9


def test_overfit_check_runs_on_the_configured_data() -> None:
    report = overfit_check(TrainConfig(data="wine", model="mlp", seed=0), steps=200)
    assert report.passed and report.batch_rows == 32
    with pytest.raises(TrainingError, match="--model mlp"):
        overfit_check(TrainConfig(data="wine", model="naive_bayes"))
