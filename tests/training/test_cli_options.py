"""The training subcommands' options: the family list of ``--help`` matches the registered families,
``shift`` never uses a label as a feature unasked, ``--json`` prints JSON, no progress bar without a
terminal, and the files ``analyze`` writes are 0644 like the rest."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from training.analysis_cli import main as analyze_main
from training.cli import FAMILY_NAMES
from training.families import family_names
from training.shift_cli import main as shift_main

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_the_registered_families() -> None:
    assert list(FAMILY_NAMES) == family_names()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("shift")
    for name in ("train", "test"):
        frame = pd.DataFrame({"f0": rng.normal(size=120), "f1": rng.normal(size=120)})
        frame["label"] = np.where(frame["f0"] > 0, "yes", "no")
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder / "train.csv", folder / "test.csv"


def test_shift_asks_which_column_is_the_label(pair: tuple[Path, Path], capsys) -> None:
    args = ["--train", str(pair[0]), "--test", str(pair[1]), "--folds", "3"]
    assert shift_main(args) == 2
    err = capsys.readouterr().err
    assert "say which column is the label" in err and "--target COL" in err and "--no-target" in err
    assert err.count("\n") == 1
    assert shift_main([*args, "--target", "label", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label_as_feature"] == "label"
    assert shift_main([*args, "--no-target", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label_as_feature"] is None


def test_train_without_a_terminal_prints_no_progress_bar(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOCKGATE_TRAIN_PROGRESS"}
    done = subprocess.run(
        [sys.executable, "-m", "lockgate.cli", "train", "--model", "logistic_regression", "--trials", "2"]
        + ["--calibration", "sigmoid", "--calibration-cv", "0", "--out", str(tmp_path), "--json"],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "search" not in done.stderr
    card = json.loads(done.stdout)  # --json: the card, not the summary
    assert card["ref"] == {"name": "demo", "version": 1}


def test_analyze_prints_json_and_writes_readable_files(demo_bundle: Path, tmp_path: Path, capsys) -> None:
    card = json.loads((demo_bundle / "card.json").read_text())
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    frame["diagnosis"] = [card["classes"][i] for i in data.target]
    frame.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "analysis"
    old = os.umask(0o022)
    try:
        argv = [str(demo_bundle), "--data", str(tmp_path / "rows.csv"), "--target", "diagnosis"]
        assert analyze_main([*argv, "--out", str(out), "--json", "--clusters", "3"]) == 0
    finally:
        os.umask(old)
    assert json.loads(capsys.readouterr().out)["model"] == "demo:1"
    for name in ("analysis.json", "pca_errors.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
