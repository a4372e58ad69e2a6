"""``lockgate analyze``: slices, error clusters by gain, PCA PNG, likely wrong labels, rows worth labeling."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from threadpoolctl import threadpool_limits

from training.analysis import analyze_bundle, format_analysis
from training.analysis_cli import main as analyze_main
from training.errors import TrainingError

FLIPPED = 12
UNLABELED = 30


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def bundle(trained_demo):
    """The shared demo:1 (tests/conftest.py): logistic regression on breast_cancer; read-only."""
    return trained_demo


@pytest.fixture(scope="module")
def labeled_csv(bundle, tmp_path_factory):
    """breast_cancer with FLIPPED labels flipped and the last UNLABELED targets left empty."""
    card = json.loads((bundle / "card.json").read_text())
    classes = card["classes"]
    data = load_breast_cancer(as_frame=True)
    df = data.frame.drop(columns=["target"])
    assert list(df.columns) == [f["name"] for f in card["features"]]
    df["diagnosis"] = [classes[i] for i in data.target]
    df["size"] = np.where(df["mean radius"] > 14, "large", "small")
    flip = np.random.default_rng(0).choice(len(df) - UNLABELED, FLIPPED, replace=False)
    df.loc[flip, "diagnosis"] = [classes[1 - classes.index(v)] for v in df.loc[flip, "diagnosis"]]
    df.loc[df.index[-UNLABELED:], "diagnosis"] = None
    path = tmp_path_factory.mktemp("csv") / "labeled.csv"
    df.to_csv(path, index=False)
    return path, set(flip.tolist())


def test_analysis_finds_flipped_labels_and_clusters_errors(bundle, labeled_csv, tmp_path) -> None:
    path, flipped = labeled_csv
    report = analyze_bundle(bundle, path, "diagnosis", segment="size", out_dir=tmp_path, n_clusters=5, top=10)
    assert report.labeled_rows == 569 - UNLABELED and report.rows == 569
    assert report.errors >= 8
    # likely wrong labels: confident disagreements, mostly the rows we flipped
    suspects = {r["row"] for r in report.likely_wrong_labels}
    assert len(suspects & flipped) >= 0.7 * len(suspects) and len(suspects) >= 5
    assert all(r["confidence"] >= 0.9 for r in report.likely_wrong_labels)
    # clusters: sorted by possible gain; shares of errors add up to 1
    gains = [c["possible_gain"] for c in report.clusters]
    assert gains == sorted(gains, reverse=True)
    assert sum(c["share_of_errors"] for c in report.clusters) == pytest.approx(1.0, abs=1e-5)
    assert sum(c["rows"] for c in report.clusters) == report.labeled_rows
    # slices per segment value
    assert set(report.slices) == {"large", "small"}
    assert sum(s["rows"] for s in report.slices.values()) == report.labeled_rows
    # rows worth labeling come from the unlabeled ones, nearest the threshold first
    assert report.worth_labeling_pool.startswith("unlabeled")
    assert all(r["row"] >= 569 - UNLABELED for r in report.worth_labeling)
    margins = [r["margin"] for r in report.worth_labeling]
    assert margins == sorted(margins)
    assert (tmp_path / "pca_errors.png").read_bytes()[:4] == b"\x89PNG"
    text = format_analysis(report)
    assert "error clusters" in text and "likely wrong labels" in text


def test_cli_writes_json_and_png_and_refuses_bad_input(bundle, labeled_csv, tmp_path, capsys) -> None:
    path, _ = labeled_csv
    out = tmp_path / "out"
    assert analyze_main([str(bundle), "--data", str(path), "--target", "diagnosis", "--out", str(out)]) == 0
    assert json.loads((out / "analysis.json").read_text())["model"] == "demo:1"
    assert (out / "pca_errors.png").is_file()
    assert "rows most worth labeling" in capsys.readouterr().out
    broken = tmp_path / "broken.csv"
    pd.read_csv(path).drop(columns=["mean texture"]).to_csv(broken, index=False)
    assert analyze_main([str(bundle), "--data", str(broken), "--target", "diagnosis"]) == 2
    err = capsys.readouterr().err
    assert "lacks the column(s) ['mean texture']" in err and "Traceback" not in err
    assert analyze_main([str(tmp_path), "--data", str(path), "--target", "diagnosis"]) == 2
    assert "card.json" in capsys.readouterr().err
    with pytest.raises(TrainingError, match="not classes of"):
        bad = tmp_path / "labels.csv"
        pd.read_csv(path).assign(diagnosis="cat").to_csv(bad, index=False)
        analyze_bundle(bundle, bad, "diagnosis")


def test_training_rows_are_counted_and_warned_about(bundle, labeled_csv, tmp_path, capsys) -> None:
    """The CSV above is the whole data set: every row but the test split's was used to train or calibrate
    (the flipped labels do not hide a row); the test split alone has none, and no warning."""
    path, _ = labeled_csv
    card = json.loads((bundle / "card.json").read_text())
    test_rows = card["dataset"]["splits"]["test"]["rows"]
    report = analyze_bundle(bundle, path, "diagnosis", top=5)
    assert report.training_rows == 569 - test_rows and len(report.training_row_examples) == 5
    assert len(report.warnings) == 1 and f"{569 - test_rows} of 569 rows" in report.warnings[0]
    assert analyze_main([str(bundle), "--data", str(path), "--target", "diagnosis", "--json",
                         "--out", str(tmp_path / "all")]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["training_rows"] == 569 - test_rows  # stdout stays pure JSON
    assert "warning:" in err and "used to train or calibrate demo:1" in err
    ref = np.load(bundle / "reference.npz")
    held_out = pd.DataFrame(ref["holdout_inputs"], columns=[f["name"] for f in card["features"]])
    held_out["diagnosis"] = [card["classes"][i] for i in ref["holdout_labels"]]
    held_out.to_csv(tmp_path / "test_split.csv", index=False)
    unseen = analyze_bundle(bundle, tmp_path / "test_split.csv", "diagnosis")
    assert unseen.rows == test_rows and unseen.training_rows == 0 and unseen.warnings == []
