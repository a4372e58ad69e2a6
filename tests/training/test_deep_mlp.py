"""The MLP estimator: schedules, initializers, optimizers, early stopping, heads, bad settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification

from training.deep import (
    INITIALIZERS,
    OPTIMIZERS,
    DeepConfigError,
    MLPClassifier,
    curves_details,
    learning_rates,
    plot_learning_curves,
)
from training.deep.initializers import initialize
from training.deep.network import build_network
from training.errors import TrainingError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def binary() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(240, 6, n_informative=4, n_redundant=0, random_state=0)


def tiny(**kw: object) -> MLPClassifier:
    params = dict(hidden_layer_sizes=(8,), epochs=12, batch_size=32, learning_rate=0.01, device="cpu")
    params.update(kw)
    return MLPClassifier(**params)


# ------------------------------------------------------------------ schedules
def test_time_based_schedule_matches_the_worked_table() -> None:
    rates = learning_rates("time", 0.3, 6, decay=1.0)
    table = [0.15, 0.10, 0.08, 0.06, 0.05]  # epochs 1-5, to two decimals (0.075 shows as 0.08)
    assert all(abs(r - t) <= 0.005 + 1e-12 for r, t in zip(rates[1:6], table, strict=True))
    assert rates[0] == 0.3


def test_time_recursive_schedule_is_the_literal_recursion() -> None:
    rates = learning_rates("time-recursive", 0.3, 4, decay=1.0)
    assert rates == pytest.approx([0.3, 0.3 / 2, 0.3 / 2 / 3, 0.3 / 2 / 3 / 4])


def test_step_and_exponential_schedules_follow_their_formulas() -> None:
    step = learning_rates("step", 0.3, 6, decay=0.5, step_size=2)
    assert step == pytest.approx([0.3 * 0.5 ** math.floor((1 + n) / 2) for n in range(6)])
    assert step[:4] == pytest.approx([0.3, 0.15, 0.15, 0.075])
    expo = learning_rates("exponential", 0.3, 5, decay=1.0)
    assert expo == pytest.approx([0.3 * math.exp(-n) for n in range(5)])
    assert learning_rates("constant", 0.1, 3) == [0.1, 0.1, 0.1]


def test_unknown_schedule_is_a_clear_error() -> None:
    with pytest.raises(DeepConfigError, match="schedule='cosine'.*one of constant, time"):
        learning_rates("cosine", 0.1, 3)
    with pytest.raises(TrainingError, match="schedule"):
        tiny(schedule="cosine").fit(np.zeros((10, 2)), [0, 1] * 5)


# ------------------------------------------------------------------ settings
@pytest.mark.parametrize("dropout", [1.0, -0.1, 1.5])
def test_dropout_outside_unit_interval_is_refused(dropout: float, binary) -> None:
    X, y = binary
    with pytest.raises(DeepConfigError, match=r"dropout=.*\[0, 1\)"):
        tiny(dropout=dropout).fit(X, y)


@pytest.mark.parametrize(
    ("param", "value"),
    [("optimizer", "adagrad"), ("initializer", "he"), ("activation", "swish"), ("batch_size", 0),
     ("hidden_layer_sizes", (8, 0)), ("l2", -1.0), ("head", "sigmoid"), ("device", "tpu")],
)
def test_impossible_settings_are_refused(param: str, value: object) -> None:
    X, y = make_classification(60, 4, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
    with pytest.raises(DeepConfigError, match=param if param != "head" else "softmax"):
        tiny(**{param: value}).fit(X, y)


def test_init_only_stores_arguments_and_clone_works() -> None:
    est = MLPClassifier(hidden_layer_sizes=(4, 4), dropout=7.0)  # validated in fit, not __init__
    assert est.get_params()["dropout"] == 7.0
    assert clone(est).get_params() == est.get_params()
    assert not hasattr(est, "classes_")


# ------------------------------------------------------------------ initializers, optimizers
def test_initializers_set_weights_and_zero_biases() -> None:
    torch.manual_seed(0)
    net = build_network(50, 3, (200,))
    for name in INITIALIZERS:
        initialize(net, name)
        w, b = net[0].weight.detach(), net[0].bias.detach()
        assert torch.count_nonzero(b) == 0
        if name == "zeros":
            assert torch.count_nonzero(w) == 0
        elif name == "ones":
            assert torch.all(w == 1)
        elif name == "normal":
            assert abs(float(w.std()) - 0.05) < 0.005
        elif name == "uniform":
            assert float(w.abs().max()) <= 0.05 and float(w.abs().max()) > 0.045
        else:  # xavier: std sqrt(2 / (fan_in + fan_out))
            assert abs(float(w.std()) - math.sqrt(2 / 250)) < 0.01


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_learns(optimizer: str, binary) -> None:
    X, y = binary
    lr = {"sgd": 0.2, "momentum": 0.05, "rmsprop": 0.01, "adam": 0.01}[optimizer]
    est = tiny(optimizer=optimizer, learning_rate=lr, early_stopping=False, epochs=10).fit(X, y)
    assert est.score(X, y) > 0.8
    assert est.history_[-1]["train_loss"] < est.history_[0]["train_loss"]


# ------------------------------------------------------------------ early stopping and curves
def test_early_stopping_restores_the_best_epoch(binary, tmp_path) -> None:
    X, y = binary
    Xtr, ytr, Xv, yv = X[:120], y[:120], X[120:], y[120:]
    est = tiny(hidden_layer_sizes=(64, 64), learning_rate=0.05, epochs=40, patience=5,
               checkpoint_dir=str(tmp_path / "ckpt")).fit(Xtr, ytr, Xv, yv)
    val = [row["val_loss"] for row in est.history_]
    assert est.best_epoch_ == int(np.argmin(val))
    assert est.n_epochs_ == len(val) and est.n_epochs_ < 40  # it stopped early
    assert "no improvement" in est.stop_reason_
    # the restored weights are the best epoch's: recomputing the validation loss gives its value
    loss, _ = est._evaluate(torch.as_tensor(Xv, dtype=torch.float32), torch.as_tensor(yv))
    assert loss == pytest.approx(val[est.best_epoch_], rel=1e-5)
    assert loss < val[-1]
    # one checkpoint per epoch, and the best one on disk matches the restored weights
    files = sorted((tmp_path / "ckpt").glob("epoch-*.pt"))
    assert len(files) == est.n_epochs_
    saved = torch.load(files[est.best_epoch_])
    for key, value in est.network_.state_dict().items():
        assert torch.equal(saved[key], value)
    png = plot_learning_curves(est.history_, est.best_epoch_, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    details = curves_details(est.history_, est.best_epoch_, est.stop_reason_)
    assert details["best_epoch"] == est.best_epoch_ and len(details["val_loss"]) == est.n_epochs_


def test_heads_batch_norm_dropout_and_class_weights() -> None:
    X, y = make_classification(300, 6, n_informative=4, n_redundant=0, n_classes=3, random_state=1)
    multi = tiny(batch_norm=True, dropout=0.2, l1=1e-4, l2=1e-4, schedule="exponential", decay=0.05)
    multi.fit(X, y)
    assert not multi.sigmoid_head_ and multi.network_.body[-1].out_features == 3
    proba = multi.predict_proba(X)
    assert proba.shape == (300, 3) and np.allclose(proba.sum(axis=1), 1)
    assert multi.score(X, y) > 0.6
    Xb, yb = make_classification(300, 6, weights=[0.9], random_state=2)
    plain = tiny(head="auto").fit(Xb, yb)
    weighted = tiny(class_weight="balanced").fit(Xb, yb)
    assert plain.sigmoid_head_ and plain.network_.body[-1].out_features == 1
    recall = [np.mean(m.predict(Xb)[yb == 1] == 1) for m in (plain, weighted)]
    assert recall[1] > recall[0]
    softmax_binary = tiny(head="softmax").fit(Xb, yb)
    assert softmax_binary.network_.body[-1].out_features == 2
