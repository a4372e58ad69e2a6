"""The one Calibrator family: fitted on responses, parity with its own ONNX, auto by out-of-fold Brier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification
from sklearn.naive_bayes import GaussianNB

from cascade_registry.artifacts import ModelBundle
from training import TrainConfig, train
from training.calibration import (
    METHODS,
    IsotonicCalibrator,
    auto_candidates,
    choose_method,
    fit_calibrator,
)
from training.graph import GraphBuilder, finish_model, onnx_predict
from training.metrics import brier_score, ece_mce

FITTED = [m for m in METHODS if m != "auto"]


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibration_lowers_ece_of_naive_bayes_on_held_out_test(tmp_path: Path, method: str) -> None:
    # Gaussian naive Bayes on digits is famously over-confident (ECE ~0.19 on the test split)
    card = ModelBundle.load(
        train(
            TrainConfig(
                data="digits", model="naive_bayes", calibration=method, trials=1, out=tmp_path, progress=False
            )
        )
    ).card
    before, after = card.calibration.before, card.calibration.after
    assert card.calibration.holdout_rows == card.dataset.splits["test"].rows == card.metrics.rows
    assert after.ece < before.ece, (before.ece, after.ece)
    assert after.brier < before.brier and after.log_loss < before.log_loss
    assert set(after.per_class) == set(card.classes) and all("ece" in v for v in after.per_class.values())
    assert card.calibration.cross_fit is not None and card.calibration.refit.refit


def _responses(n_classes: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(900, 6, n_informative=4, n_redundant=0, n_classes=n_classes, random_state=1)
    rng = np.random.default_rng(0)
    S = X[:, :n_classes] * 3 + rng.normal(size=(len(y), n_classes))  # over-confident logits
    if kind == "probability":
        S = np.exp(S - S.max(axis=1, keepdims=True))
        S = S / S.sum(axis=1, keepdims=True)
    R = S[:, 1:2] - (S[:, :1] if kind == "margin" else 0) if n_classes == 2 else S
    return R, y


def _onnx_of(cal, R: np.ndarray) -> np.ndarray:
    """Run the calibrator's nodes alone: its input is the graph input, cast to float64."""
    b = GraphBuilder("t")
    probs = cal.to_onnx(b, b.double("input"))
    model = finish_model(b, R.shape[1], probs, cal.n_classes)
    return onnx_predict(model.SerializeToString(), R.astype(np.float32))[1]


@pytest.mark.parametrize("kind", ["margin", "probability"])
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("method", FITTED)
def test_every_calibrator_matches_its_onnx(method: str, n_classes: int, kind: str) -> None:
    R, y = _responses(n_classes, kind)
    R = R.astype(np.float32).astype(np.float64)
    cal = fit_calibrator(method, R[:600], y[:600], n_classes, kind)
    native = cal.predict_proba(R[600:])
    assert np.allclose(native.sum(axis=1), 1.0)
    assert np.max(np.abs(_onnx_of(cal, R[600:]) - native)) <= 1e-5


@pytest.mark.parametrize("n_classes", [2, 3])
def test_isotonic_on_log_odds_is_isotonic_on_the_probabilities(n_classes: int) -> None:
    """Naive Bayes's isotonic reads log-odds (training.response): same fit and interpolation as on p."""
    P, y = _responses(n_classes, "probability")
    L = np.log(P) - np.log1p(-P)
    on_p = fit_calibrator("isotonic", P[:600], y[:600], n_classes, "probability").predict_proba(P[600:])
    cal = fit_calibrator("isotonic", L[:600], y[:600], n_classes, "log_odds")
    native = cal.predict_proba(L[600:])
    assert np.max(np.abs(native - on_p)) <= 1e-9
    assert np.max(np.abs(_onnx_of(cal, L[600:].astype(np.float32).astype(np.float64))
                         - cal.predict_proba(L[600:].astype(np.float32).astype(np.float64)))) <= 1e-5


def test_auto_compares_every_candidate_out_of_fold_including_none() -> None:
    R, y = _responses(3, "margin")
    choice = choose_method(R, y, 3, "margin", seed=0)
    assert set(choice.brier) == set(auto_candidates(3, "margin"))
    assert {"none", "temperature", "beta", "vector", "dirichlet"} <= set(choice.brier)
    assert choice.method == min(choice.brier, key=choice.brier.get)
    assert choice.method != "none"  # the logits are over-confident on purpose
    assert "out-of-fold Brier" in choice.describe()


def test_auto_keeps_the_raw_model_when_it_is_already_calibrated() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(scale=2.0, size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-d))).astype(int)  # labels drawn from sigmoid(d) itself
    choice = choose_method(d.reshape(-1, 1), y, 2, "margin", seed=0)
    assert choice.brier["none"] <= min(choice.brier.values()) + 5e-4


def test_knot_merging_bounds_slopes_and_keeps_the_calibration() -> None:
    X, y = load_digits(return_X_y=True)
    est = GaussianNB().fit(X[:600], y[:600])
    cal = fit_calibrator("isotonic", est.predict_proba(X[600:1000]), y[600:1000], 10, "probability")
    assert isinstance(cal, IsotonicCalibrator)
    before = cal.predict_proba(est.predict_proba(X[1200:]))
    removed = cal.merge_close_knots(1e4 * 1e-12, 1e4 * 1e-12)
    after = cal.predict_proba(est.predict_proba(X[1200:]))
    assert removed > 0  # naive Bayes probabilities produce knots a hair apart
    for x, yk in cal.maps_:
        dx, dy = np.diff(x), np.diff(yk)
        assert np.all(dx > 0) and np.all(dy >= 0)
        assert np.all(dx[dy > 0] >= 1e4 * 1e-12 / 2 * 0.999)  # no jump narrower than half the tolerance
    assert np.mean(before.argmax(axis=1) == after.argmax(axis=1)) > 0.97
    assert ece_mce(y[1200:], after, 10)[0] < ece_mce(y[1200:], before, 10)[0] + 0.01
    assert np.allclose(after.sum(axis=1), 1.0)
    assert brier_score(y[1200:], after) < brier_score(y[1200:], est.predict_proba(X[1200:]))


def test_calibration_that_hurts_unseen_rows_is_said_and_auto_keeps_the_raw_model(
    tmp_path: Path, capsys
) -> None:
    """Issue 18, finding 2: isotonic fitted on wine's 36-row calibration split makes the unseen test
    split's log loss worse (0.06 -> 1.0): the card and the training summary say so, with the small-sample
    caveat; ``auto`` compares the raw model out of fold too, keeps it, and the card says why."""
    from training.cli import main

    args = ["--data", "wine", "--model", "logistic_regression", "--calibration-cv", "0", "--trials", "1",
            "--quiet", "--out", str(tmp_path)]
    assert main([*args, "--calibration", "isotonic", "--name", "hurt"]) == 0
    summary = capsys.readouterr().out
    cal = ModelBundle.load(tmp_path / "hurt-1").card.calibration
    assert cal.after.log_loss > cal.before.log_loss
    assert any(w.startswith("calibration (isotonic) worsened the log loss on the unseen test split")
               for w in cal.warnings), cal.warnings
    assert f"WARNING: {cal.warnings[0]}" in summary
    assert "NOTE: small sample: ECE and the reliability diagram rest on 36 held-out rows" in summary
    assert main([*args, "--calibration", "auto", "--name", "auto"]) == 0
    capsys.readouterr()
    cal = ModelBundle.load(tmp_path / "auto-1").card.calibration
    assert cal.requested == "auto" and cal.method == "none" and cal.warnings == []
    assert "none" in cal.candidates and len(cal.candidates) > 1
    assert min(cal.candidates, key=lambda m: cal.candidates[m]["brier"]) == "none"
    assert "lowest out-of-fold Brier" in cal.reason and cal.reason.split("->")[1].strip().startswith("none")
