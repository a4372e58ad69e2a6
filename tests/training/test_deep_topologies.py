"""CNN / GRU / LSTM / multi-input topologies: the MLP's battery (one-batch overfit, early stopping, learning
curves, ONNX parity after calibration) plus "beats the MLP on the flattened input" on seeded data."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from sklearn.model_selection import train_test_split

from lockgate.cli import main
from safety import GatePolicy, run_gate
from training.calibration import fit_calibrator
from training.config import TrainConfig
from training.datasets import load_dataset
from training.deep import DeepClassifier, DeepConfigError, MLPClassifier, export_mlp, onnx_bytes
from training.deep.overfit import overfit_one_batch
from training.errors import ConfigError
from training.families import bind_inputs, get_family
from training.response import response
from training.trainer import train

torch.set_num_threads(1)

#: per topology: its data set, its estimator's settings, a lower bound on its test accuracy
CASES = {
    "cnn": ("digits", {"channels": 32, "hidden_layer_sizes": (128,), "dropout": 0.25, "learning_rate": 2e-3,
                       "epochs": 25}, 0.975),
    "gru": ("sequences", {"epochs": 6}, 0.95),
    "lstm": ("sequences", {"epochs": 8}, 0.95),
    "multi": ("mixed_inputs", {"epochs": 10}, 0.9),
}


def split(data: str):
    ds = load_dataset(data, 0)
    X_train, X_test, y_train, y_test = train_test_split(ds.X.astype(np.float32), ds.y, test_size=0.3,
                                                        random_state=0, stratify=ds.y)
    return ds, X_train, X_test, y_train, y_test


@pytest.fixture(scope="module", params=list(CASES))
def fitted(request):
    data, settings, _ = CASES[request.param]
    ds, X_train, X_test, y_train, y_test = split(data)
    est = DeepClassifier(topology=request.param, inputs=ds.inputs, feature_names=tuple(ds.feature_names),
                         device="cpu", random_state=0, **settings).fit(X_train, y_train)
    return request.param, est, X_test, y_test


def test_beats_the_mlp_on_the_flattened_input(fitted) -> None:
    topology, est, X_test, y_test = fitted
    data, settings, floor = CASES[topology]
    _, X_train, _, y_train, _ = split(data)
    mlp = MLPClassifier(epochs=settings["epochs"], device="cpu", random_state=0).fit(X_train, y_train)
    ours, theirs = np.mean(est.predict(X_test) == y_test), np.mean(mlp.predict(X_test) == y_test)
    assert ours >= floor and ours > theirs, (topology, ours, theirs)


def test_export_with_calibrator_has_parity(fitted) -> None:
    _, est, X_test, y_test = fitted
    n_classes = len(est.classes_)
    y_idx = np.searchsorted(est.classes_, y_test)
    method = "temperature" if n_classes == 2 else "dirichlet"
    cal = fit_calibrator(method, response(est, X_test[:150]), y_idx[:150], n_classes, "probability")
    model = export_mlp(est, cal)
    assert onnx_bytes(model) == onnx_bytes(export_mlp(est, cal))  # byte-identical
    sess = ort.InferenceSession(onnx_bytes(model), providers=["CPUExecutionProvider"])
    _, proba = sess.run(["label", "probabilities"], {"input": X_test[150:]})
    assert np.abs(proba - cal.predict_proba(response(est, X_test[150:]))).max() <= 1e-4
    hostile = np.tile(X_test[:1], (4, 1))
    hostile[0], hostile[1], hostile[2], hostile[3] = np.nan, 1e30, -1e30, np.inf
    if est.topology == "multi":  # the table columns are not clipped: the edge refuses NaN/inf there
        hostile[:, :3] = X_test[:1, :3]
    _, answer = sess.run(["label", "probabilities"], {"input": hostile})
    assert np.isfinite(answer).all() and np.allclose(answer.sum(axis=1), 1, atol=1e-5)


def test_early_stopping_curves_and_topology_in_the_card(fitted) -> None:
    topology, est, _, _ = fitted
    details = est.card_details()
    curves = details["learning_curves"]
    assert curves["epochs_run"] == est.n_epochs_ and len(curves["val_loss"]) == est.n_epochs_
    assert 0 <= curves["best_epoch"] < est.n_epochs_
    assert details["topology"]["name"] == topology and details["topology"]["encoders"]


def test_overfits_one_batch(fitted) -> None:
    _, est, X_test, y_test = fitted
    report = overfit_one_batch(est, X_test, y_test, batch_size=16, steps=80)
    assert report.passed, report.message


def test_topology_refuses_data_without_its_input() -> None:
    ds = load_dataset("wine", 0)
    with pytest.raises(ConfigError, match="needs data with an input of kind image"):
        bind_inputs(get_family("cnn"), ds.inputs, ds.feature_names)
    with pytest.raises(DeepConfigError, match="a sequence input"):
        DeepClassifier(topology="gru", epochs=1, device="cpu").fit(ds.X, ds.y)


def test_cli_overfit_check_and_refusal(tmp_path, capsys) -> None:
    assert main(["train", "--data", "sequences", "--model", "gru", "--overfit-one-batch", "--quiet",
                 "--out", str(tmp_path)]) == 0
    assert "can overfit one batch" in capsys.readouterr().out
    assert main(["train", "--data", "wine", "--model", "cnn", "--quiet", "--out", str(tmp_path)]) == 2
    assert "--model cnn needs data with an input of kind image" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_same_seed_same_onnx_bytes() -> None:
    ds = load_dataset("mixed_inputs", 0)
    X, y = ds.X[:200].astype(np.float32), ds.y[:200]

    def fit() -> bytes:
        est = DeepClassifier(topology="multi", inputs=ds.inputs, feature_names=tuple(ds.feature_names),
                             epochs=2, device="cpu", random_state=7).fit(X, y)
        return onnx_bytes(export_mlp(est))

    assert fit() == fit()


def test_an_lstm_bundle_passes_the_real_gate_empty_batch_included(tmp_path) -> None:
    """``lockgate train --data sequences --model lstm`` end to end: the card names the LSTM encoder, and the
    real gate's hostile inputs (empty batch, NaN/inf ids, ids beyond the vocabulary, ...) pass: ONNX
    Runtime's recurrent kernels never see an empty batch (the guard row)."""
    bundle = train(TrainConfig(data="sequences", model="lstm", trials=1, calibration_cv=0, refit=False,
                               name="seq-lstm", out=tmp_path, progress=False, calibration="temperature"))
    card = (bundle / "card.json").read_text()
    assert "SequenceEncoder" in card and '"lstm"' in card
    report = run_gate(bundle, GatePolicy())
    assert report.passed, [(c.name, c.message) for c in report.checks if c.status not in ("pass", "skip")]
    inputs = next(c for c in report.checks if c.name == "inputs")
    assert "empty_batch" in inputs.message and "tokens_ids_beyond_vocabulary" in inputs.message
