"""ONNX-vs-native parity <= 1e-4 for every family x calibration, binary and multiclass.

The native side is scikit-learn itself (the base estimator, or ``CalibratedClassifierCV(FrozenEstimator)``)
as stored in reference.npz by train(); the ONNX side is re-run here with ONNX Runtime.

The family x calibration matrix calibrates on one calibration split (``calibration_cv=0``: one
(model, calibrator) pair per graph); the default export, K cross-fitted pairs averaged in one graph, is
checked once per family (multiclass isotonic, the calibrator with the most nodes), so every family's
graph is also shown to embed K times side by side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from cascade_registry.artifacts import ModelBundle
from training import TrainConfig, train

FAMILIES = ["logistic_regression", "random_forest", "hist_gradient_boosting", "svm", "naive_bayes"]


def _check_parity(path: Path, family: str, calibration: str, data: str) -> None:
    card = ModelBundle.load(path).card
    assert card.calibration.method == calibration and card.family == family
    ref = np.load(path / "reference.npz")
    sess = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    label, probs = sess.run(["label", "probabilities"], {"input": ref["inputs"]})
    diff = np.abs(probs.astype(np.float64) - ref["probabilities"]).max()
    assert diff <= 1e-4, f"{family}+{calibration} on {data}: max |dp| = {diff:.3g}"
    assert card.export.parity_max_abs_diff <= 1e-4
    assert probs.shape == (len(ref["inputs"]), len(card.classes))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.array_equal(label, probs.argmax(axis=1))


@pytest.mark.parametrize("data", ["breast_cancer", "wine"], ids=["binary", "multiclass"])
@pytest.mark.parametrize("calibration", ["none", "sigmoid", "isotonic"])
@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_matches_native(tmp_path: Path, family: str, calibration: str, data: str) -> None:
    path = train(TrainConfig(data=data, model=family, calibration=calibration, calibration_cv=0, out=tmp_path,
                             trials=1, progress=False))
    _check_parity(path, family, calibration, data)


@pytest.mark.parametrize("family", FAMILIES)
def test_cross_fitted_ensemble_matches_native(tmp_path: Path, family: str) -> None:
    path = train(TrainConfig(data="wine", model=family, calibration="isotonic", out=tmp_path, trials=1,
                             progress=False))
    card = ModelBundle.load(path).card
    assert card.calibration.cross_fit is not None and card.calibration.cross_fit.ensemble
    _check_parity(path, family, "isotonic", "wine")
