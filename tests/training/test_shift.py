"""Adversarial validation: finds an injected shift, not a random split; CLI and card storage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from training.errors import TrainingError
from training.shift import adversarial_validation, read_pair
from training.shift_cli import main as shift_main


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def bundle(trained_demo):
    """A real bundle from the training core (the shared demo:1: logistic regression on breast_cancer)."""
    return trained_demo


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(360, 5))
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    df["label"] = (X[:, 0] + X[:, 1] > 0).astype(int)
    return df


def test_random_split_shows_no_shift(frame: pd.DataFrame) -> None:
    report = adversarial_validation(frame.iloc[:240], frame.iloc[240:].reset_index(drop=True), target="label")
    assert report.auc < 0.6 and not report.shifted
    assert "no detectable shift" in report.verdict
    assert report.label_as_feature == "label" and "label" in report.features


def test_injected_shift_is_found_and_test_like_rows_are_proposed(frame: pd.DataFrame) -> None:
    train = frame.iloc[:240].copy()
    test = frame.iloc[240:].reset_index(drop=True).copy()
    test["f3"] += 1.5  # production drifted on one feature
    report = adversarial_validation(train, test, target="label", validation_fraction=0.2, flag_fraction=0.1)
    assert report.auc > 0.75 and report.shifted
    assert next(iter(report.top_features)) == "f3"
    assert len(report.proposed_validation_rows) == 48 and len(report.flagged_train_like_rows) == 24
    # the proposed validation rows are the training rows that look like the test rows
    proposed = train.iloc[report.proposed_validation_rows]["f3"].mean()
    flagged = train.iloc[report.flagged_train_like_rows]["f3"].mean()
    assert proposed > train["f3"].mean() > flagged
    assert min(report.proposed_validation_scores) >= max(report.flagged_train_like_scores)


def test_mismatched_columns_and_bad_settings_are_clear_errors(frame: pd.DataFrame, tmp_path) -> None:
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.drop(columns=["f2"]).assign(extra=1).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(TrainingError, match=r"only in train \['f2'\], only in test \['extra'\]"):
        read_pair(tmp_path / "a.csv", tmp_path / "b.csv")
    with pytest.raises(TrainingError, match="folds"):
        adversarial_validation(frame, frame, folds=1)
    with pytest.raises(TrainingError, match="too few rows"):
        adversarial_validation(frame.iloc[:10], frame.iloc[:10])


def test_cli_reports_stores_in_card_and_exit_codes(frame: pd.DataFrame, tmp_path, capsys, bundle) -> None:
    train = frame.iloc[:240]
    test = frame.iloc[240:].copy()
    test["f1"] -= 2.0
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    frame.drop(columns=["f0"]).to_csv(tmp_path / "bad.csv", index=False)
    args = ["--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv"), "--target", "label"]
    assert shift_main([*args, "--json-out", str(tmp_path / "r.json"), "--card", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "adversarial validation AUC" in out and "shift detected" in out
    assert json.loads((tmp_path / "r.json").read_text())["shifted"] is True
    card = json.loads((bundle / "card.json").read_text())
    assert card["details"]["shift"]["shifted"] is True
    assert shift_main([*args, "--fail-on-shift"]) == 1
    assert shift_main(["--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lockgate shift: the CSVs have different columns") and "Traceback" not in err
