"""`--calibration temperature`: softmax(logits / T) fitted on the calibration split, fused into the graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from lockgate.cli import main
from training import TrainConfig, TrainingError, train
from training.calibration import fit_calibrator
from training.metrics import calibration_metrics
from training.response import response


def _card(bundle: Path) -> dict:
    return json.loads((bundle / "card.json").read_text())


def _check_temperature_bundle(bundle: Path, n_classes: int) -> dict:
    """The card records temperature and T > 0; the graph reproduces the native probabilities."""
    card = _card(bundle)
    cal = card["calibration"]
    assert cal["method"] == "temperature" and cal["requested"] == "temperature"
    T = card["details"]["temperature"]
    assert isinstance(T, float) and T > 0
    assert f"T = {T:.4g}" in cal["reason"]
    assert card["details"]["calibration_input"] in ("decision_function", "predict_proba")
    for side in ("before", "after"):
        assert 0 <= cal[side]["ece"] <= 1 and 0 <= cal[side]["brier"] <= 2
    # T minimizes the log loss on the calibration split, and T = 1 is the uncalibrated model
    fit = card["details"]["temperature_fit"]
    assert fit["split"] in ("calibration", "out-of-fold")
    assert fit["after"]["log_loss"] <= fit["before"]["log_loss"] + 1e-9
    # parity, as recorded and re-measured here against the reference rows
    export = card["export"]
    assert export["parity_max_abs_diff"] <= 1e-4 and export["parity_rows"] > 0
    ref = np.load(bundle / "reference.npz")
    sess = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    label, probs = sess.run(["label", "probabilities"], {"input": ref["inputs"]})
    assert probs.shape == (len(ref["inputs"]), n_classes)
    assert np.max(np.abs(probs - ref["probabilities"])) <= 1e-4
    assert np.array_equal(label, ref["probabilities"].argmax(axis=1))
    ops = {n.op_type for n in onnx.load(str(bundle / "model.onnx")).graph.node}
    assert {"Div", "Softmax"} <= ops
    return card


def test_mlp_binary_through_the_cli(tmp_path: Path, write_csv) -> None:
    data = write_csv(rows=240)
    args = ["--data", str(data), "--target", "label", "--segment", "region", "--model", "mlp",
            "--calibration", "temperature", "--calibration-cv", "0", "--trials", "1", "--quiet", "--out",
            str(tmp_path), "--name", "tmlp"]
    assert main(["train", *args]) == 0
    card = _check_temperature_bundle(tmp_path / "tmlp-1", 2)
    assert card["details"]["calibration_input"] == "predict_proba"  # log p: the logits up to a shift
    assert card["family"] == "mlp"


def test_mlp_multiclass_through_the_api(tmp_path: Path) -> None:
    bundle = train(TrainConfig(data="wine", model="mlp", calibration="temperature", calibration_cv=0,
                               trials=1, seed=0, name="wmlp", out=tmp_path, progress=False))
    card = _check_temperature_bundle(bundle, 3)
    assert card["task"] == "multiclass"


def test_svm_cli_and_api_give_the_same_bytes(tmp_path: Path) -> None:
    args = ["--data", "breast_cancer", "--model", "svm", "--calibration", "temperature",
            "--calibration-cv", "0", "--trials", "1", "--quiet", "--out", str(tmp_path / "cli"),
            "--name", "tsvm"]
    assert main(["train", *args]) == 0
    first = tmp_path / "cli" / "tsvm-1"
    card = _check_temperature_bundle(first, 2)
    assert card["details"]["calibration_input"] == "decision_function"
    again = train(TrainConfig(data="breast_cancer", model="svm", calibration="temperature", calibration_cv=0,
                              trials=1, seed=0, name="tsvm", out=tmp_path / "api", progress=False))
    assert (again / "model.onnx").read_bytes() == (first / "model.onnx").read_bytes()
    assert _card(again)["details"]["temperature"] == card["details"]["temperature"]


@pytest.mark.parametrize("family", ["random_forest", "naive_bayes"])
def test_families_without_logits_are_refused_before_training(tmp_path: Path, capsys, family: str) -> None:
    code = main(["train", "--model", family, "--calibration", "temperature", "--quiet", "--out",
                 str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"the {family} family has none" in err
    assert "sigmoid, isotonic, auto or none" in err
    assert "logistic_regression" in err and "svm" in err and "mlp" in err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TrainingError, match="temperature"):
        train(TrainConfig(model=family, calibration="temperature", out=tmp_path, progress=False))


def test_temperature_cools_an_over_confident_model() -> None:
    """A nearly unregularized logistic regression on few noisy rows is over-confident: T > 1 fixes it."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=3000, n_features=30, n_informative=5, flip_y=0.15, random_state=0)
    model = LogisticRegression(C=1e4, max_iter=5000).fit(X[:150], y[:150])
    fitted = fit_calibrator("temperature", response(model, X[150:1150]), y[150:1150], 2, "margin")
    T = fitted.temperature_
    assert T > 1 and fitted.warnings() == []
    test_X, test_y = X[1150:], y[1150:]
    calibrated = fitted.predict_proba(response(model, test_X))
    before = calibration_metrics(test_y, model.predict_proba(test_X), 10)
    after = calibration_metrics(test_y, calibrated, 10)
    assert after.ece < before.ece and after.brier < before.brier and after.log_loss < before.log_loss
    # temperature never changes the predicted class
    assert np.array_equal(calibrated.argmax(1), model.predict_proba(test_X).argmax(1))


def test_temperature_at_its_bound_is_a_warning() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(size=(400, 1)) * 1e-3  # logits without any signal: T runs to its lower bound
    y = (d[:, 0] > 0).astype(int)
    fitted = fit_calibrator("temperature", d, y, 2, "margin")
    assert fitted.warnings() and "bound" in fitted.warnings()[0]


@pytest.mark.parametrize("data", ["breast_cancer", "wine"], ids=["binary", "multiclass"])
@pytest.mark.parametrize("family", ["logistic_regression", "hist_gradient_boosting"])
def test_other_logit_families_keep_parity(tmp_path: Path, family: str, data: str) -> None:
    from cascade_registry.artifacts import ModelBundle

    path = train(TrainConfig(data=data, model=family, calibration="temperature", calibration_cv=0, trials=1,
                             out=tmp_path, progress=False))
    assert ModelBundle.load(path).card.calibration.method == "temperature"
    _check_temperature_bundle(path, 2 if data == "breast_cancer" else 3)
