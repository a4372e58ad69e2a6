"""Calibration is fitted on the calibration split only and helps a badly calibrated family."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.naive_bayes import GaussianNB

from cascade_registry.artifacts import ModelBundle
from training import TrainConfig, train
from training.calibration import ISOTONIC_MIN_ROWS, calibrate, merge_close_knots
from training.metrics import ece_mce
from training.splits import Split


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
    assert after.ece < 0.75 * before.ece, (before.ece, after.ece)
    assert after.brier < before.brier and after.log_loss < before.log_loss


def _split(name: str, X: np.ndarray, y: np.ndarray) -> Split:
    return Split(name, np.arange(len(y)), X, y, None, np.array([str(i) for i in range(len(y))]))


def test_auto_picks_sigmoid_for_small_calibration_sets_and_says_why() -> None:
    X, y = load_digits(return_X_y=True)
    est = GaussianNB().fit(X[:600], y[:600])
    result = calibrate(
        est,
        "auto",
        _split("calibration", X[600:900], y[600:900]),
        _split("validation", X[900:1200], y[900:1200]),
        bins=10,
    )
    assert result.method == "sigmoid" and result.requested == "auto"
    assert (
        "300 rows" in result.reason and str(ISOTONIC_MIN_ROWS) in result.reason and "Brier" in result.reason
    )


def test_auto_compares_brier_when_isotonic_is_allowed() -> None:
    X, y = load_digits(return_X_y=True)
    est = GaussianNB().fit(X[:500], y[:500])
    result = calibrate(
        est,
        "auto",
        _split("calibration", X[500:1500], y[500:1500]),
        _split("validation", X[1500:], y[1500:]),
        bins=10,
    )
    assert result.method in {"sigmoid", "isotonic"}
    assert "sigmoid" in result.reason and "isotonic" in result.reason and "1000 rows" in result.reason


def test_knot_merging_bounds_slopes_and_keeps_the_calibration() -> None:
    X, y = load_digits(return_X_y=True)
    est = GaussianNB().fit(X[:600], y[:600])
    cal = calibrate(
        est,
        "isotonic",
        _split("calibration", X[600:1000], y[600:1000]),
        _split("validation", X[1000:1200], y[1000:1200]),
        bins=10,
    )
    before = cal.predict_proba(X[1200:])
    removed = merge_close_knots(cal.native, (1e-12, 1e-12))
    after = cal.predict_proba(X[1200:])
    assert removed > 0  # naive Bayes probabilities produce knots a hair apart
    for iso in cal.native.calibrated_classifiers_[0].calibrators:
        dx, dy = np.diff(iso.X_thresholds_), np.diff(iso.y_thresholds_)
        assert np.all(dx > 0) and np.all(dy >= 0)
        assert np.all(dx[dy > 0] >= 1e4 * 1e-12 / 2 * 0.999)  # no jump narrower than half the tolerance
    assert np.mean(before.argmax(axis=1) == after.argmax(axis=1)) > 0.97
    assert ece_mce(y[1200:], after, 10)[0] < ece_mce(y[1200:], before, 10)[0] + 0.01
    assert np.allclose(after.sum(axis=1), 1.0)
