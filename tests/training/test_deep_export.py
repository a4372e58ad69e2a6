"""MLP -> ONE ONNX graph with the calibrator fused; parity with the native model; overfit-one-batch."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from sklearn.datasets import make_classification

from training.calibration import fit_calibrator
from training.deep import (
    MLPClassifier,
    export_mlp,
    format_overfit_report,
    onnx_bytes,
    overfit_one_batch,
)
from training.response import response

torch.set_num_threads(1)


def run_onnx(model: onnx.ModelProto, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sess = ort.InferenceSession(onnx_bytes(model), providers=["CPUExecutionProvider"])
    label, proba = sess.run(["label", "probabilities"], {"input": X.astype(np.float32)})
    return label, proba


@pytest.fixture(scope="module", params=[2, 3], ids=["binary-sigmoid-head", "multiclass-softmax"])
def fitted(request) -> tuple[MLPClassifier, np.ndarray, np.ndarray]:
    X, y = make_classification(360, 6, n_informative=4, n_redundant=0, n_classes=request.param,
                               random_state=3)
    est = MLPClassifier(hidden_layer_sizes=(16, 16), epochs=15, batch_norm=request.param == 3,
                        dropout=0.1, learning_rate=0.01, device="cpu").fit(X[:240], y[:240])
    return est, X[240:], y[240:]


@pytest.mark.parametrize("method", ["none", "temperature", "sigmoid", "isotonic", "beta", "vector",
                                    "dirichlet"])
def test_export_fuses_calibrator_with_parity(fitted, method: str) -> None:
    est, X, y = fitted
    cal_rows, check_rows = slice(0, 60), slice(60, None)
    y_idx = np.searchsorted(est.classes_, y)
    n_classes = len(est.classes_)
    cal = fit_calibrator(method, response(est, X[cal_rows]), y_idx[cal_rows], n_classes, "probability")
    model = export_mlp(est, cal)
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert model.graph.output[1].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    label, proba = run_onnx(model, X[check_rows])
    native = cal.predict_proba(response(est, X[check_rows]))
    assert np.abs(proba - native).max() <= 1e-4
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert label.dtype == np.int64 and np.mean(label == native.argmax(axis=1)) >= 0.99
    if method == "temperature":
        assert cal.temperature_ > 0 and cal.method == "temperature"


def test_export_bytes_are_deterministic(fitted) -> None:
    est, X, y = fitted
    cal = fit_calibrator("temperature", response(est, X), np.searchsorted(est.classes_, y),
                         len(est.classes_), "probability")
    first, second = onnx_bytes(export_mlp(est, cal)), onnx_bytes(export_mlp(est, cal))
    assert first == second
    model = onnx.load_from_string(first)
    assert model.doc_string == "" and all(n.doc_string == "" for n in model.graph.node)
    assert {o.domain: o.version for o in model.opset_import}[""] == 17


def test_uncalibrated_export_matches_predict_proba(fitted) -> None:
    est, X, _ = fitted
    label, proba = run_onnx(export_mlp(est), X)
    assert np.abs(proba - est.predict_proba(X)).max() <= 1e-5
    assert np.array_equal(est.classes_[label], est.predict(X))


# ------------------------------------------------------------------ overfit one batch
class FlippedLossMLP(MLPClassifier):
    """A deliberately broken model: it maximizes its loss."""

    def _compute_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -super()._compute_loss(logits, target)


@pytest.fixture(scope="module")
def batch_data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(200, 10, n_informative=6, random_state=0)


def test_overfit_one_batch_succeeds_on_a_correct_model(batch_data) -> None:
    report = overfit_one_batch(MLPClassifier(hidden_layer_sizes=(32, 32), device="cpu"), *batch_data)
    assert report.passed and report.sign == "overfits" and report.causes == []
    assert report.final_accuracy == 1.0 and report.final_loss < 0.1 * report.initial_loss
    assert format_overfit_report(report).startswith("PASS")


def test_overfit_one_batch_names_the_sign_of_a_flipped_loss(batch_data) -> None:
    report = overfit_one_batch(FlippedLossMLP(hidden_layer_sizes=(32, 32), device="cpu"), *batch_data,
                               steps=100)
    assert not report.passed and report.sign == "goes up"
    assert report.final_loss > report.initial_loss
    assert any("flipped sign" in c for c in report.causes)
    text = format_overfit_report(report)
    assert text.startswith("FAIL") and "error goes up" in text


def test_overfit_one_batch_names_a_plateau(batch_data) -> None:
    est = MLPClassifier(hidden_layer_sizes=(32, 32), learning_rate=1e-7, device="cpu")
    report = overfit_one_batch(est, *batch_data, steps=50)
    assert not report.passed and report.sign == "plateaus"
    assert "learning rate too low" in report.causes
    assert any("learning_rate=1e-07 is very small" in c for c in report.causes)


def test_overfit_one_batch_names_an_explosion(batch_data) -> None:
    est = MLPClassifier(hidden_layer_sizes=(32, 32), optimizer="sgd", learning_rate=50.0, device="cpu")
    report = overfit_one_batch(est, *batch_data, steps=60)
    assert not report.passed and report.sign == "explodes"
    assert "learning rate too high" in report.causes
