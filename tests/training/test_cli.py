"""``lockgate train``: the demo with no arguments, config files, and every bad input -> one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cascade_registry.artifacts import ModelBundle
from training.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_no_arguments_trains_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run([], capsys)
    assert code == 0
    bundle = ModelBundle.load(tmp_path / "out" / "demo-1")
    assert bundle.card.dataset.name == "breast_cancer" and bundle.card.calibration.method != "none"
    assert "before: ece" in out and "after:  ece" in out and "bundle: out/demo-1" in out


def test_help_is_readable(capsys) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for flag in (
        "--data",
        "--target",
        "--segment",
        "--model",
        "--calibration",
        "--trials",
        "--seed",
        "--metric",
        "--name",
        "--version",
        "--out",
        "--overwrite",
        "--price-per-core-hour",
        "--config",
    ):
        assert flag in out
    assert "hist_gradient_boosting" in out and "exit codes" in out


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_config_file_with_flag_override(tmp_path: Path, suffix: str, capsys) -> None:
    cfg = tmp_path / f"train{suffix}"
    if suffix == ".toml":
        cfg.write_text(
            '[train]\nmodel = "naive_bayes"\ncalibration = "sigmoid"\ntrials = 1\nseed = 1\nname = "nb"\n'
        )
    else:
        cfg.write_text("model: naive_bayes\ncalibration: sigmoid\ntrials: 1\nseed: 1\nname: nb\n")
    code, _, err = run(
        [
            "--config",
            str(cfg),
            "--seed",
            "5",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
            "--price-per-core-hour",
            "2.5",
            "--metric",
            "cohen_kappa",
        ],
        capsys,
    )
    assert code == 0, err
    card = ModelBundle.load(tmp_path / "o" / "nb-1").card
    assert (card.family, card.seed, card.search.metric, card.cost.price_per_core_hour) == (
        "naive_bayes",
        5,
        "cohen_kappa",
        2.5,
    )


def test_missing_values_are_imputed_in_the_graph_and_recorded(tmp_path: Path, write_csv, capsys) -> None:
    def holes(frame):
        frame.loc[[3, 10, 40], "x1"] = np.nan
        frame.loc[7, "x2"] = np.nan
        return frame

    data = write_csv(mutate=holes)
    code, _, err = run(
        [
            "--data",
            str(data),
            "--target",
            "label",
            "--missing",
            "impute_median",
            "--segment",
            "region",
            "--trials",
            "1",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    card = ModelBundle.load(tmp_path / "o" / "demo-1").card
    assert card.dataset.missing_values.startswith("auto: 4 missing values")
    assert [f.missing_indicator for f in card.features] == [True, True, False]


def _nonnumeric(frame):
    frame["city"] = ["paris", "rome"] * (len(frame) // 2)
    frame["when"] = "2024-01-01"
    return frame


def _nan_inf(frame):
    frame.loc[[1, 2], "x1"] = np.nan
    frame.loc[5, "x3"] = -np.inf
    return frame


def _single_class(frame):
    frame["label"] = "yes"
    return frame


def _no_rows(frame):
    return frame.iloc[:0]


def _tiny_class(frame):
    frame.loc[:4, "label"] = "maybe"
    return frame


BAD = {
    "missing-file": (None, ["--data", "{tmp}/nope.csv", "--target", "label"], "nope.csv does not exist"),
    "unknown-target": (None, ["--target", "churn"], "target column 'churn' not found"),
    "unknown-segment": (None, ["--target", "label", "--segment", "zone"], "segment column 'zone' not found"),
    "no-target": (None, [], "no target column given"),
    "strict-missing": (
        _nan_inf, ["--target", "label", "--segment", "region", "--drop", "x3", "--missing", "error"],
        "features contain 2 missing values (by column: x1: 2)",
    ),
    "nan-inf": (_nan_inf, ["--target", "label", "--segment", "region"], "'x3' has 1 infinite"),
    "unknown-override": (_nonnumeric, ["--target", "label", "--drop", "nope"], "unknown columns ['nope']"),
    "single-class": (_single_class, ["--target", "label", "--segment", "region"], "single class ('yes')"),
    "tiny-class": (_tiny_class, ["--target", "label", "--segment", "region"], "'maybe': 5 rows"),
    "no-rows": (_no_rows, ["--target", "label"], "has a header but no rows"),
    "unknown-family": (None, ["--target", "label", "--model", "xgboost"], "unknown model family 'xgboost'"),
    "bad-calibration": (None, ["--target", "label", "--calibration", "platt"], "calibration"),
    "zero-trials": (None, ["--target", "label", "--trials", "0"], "trials"),
    "bad-name": (None, ["--target", "label", "--name", "Bad Name"], "name"),
    "target-on-builtin": (
        "builtin", ["--data", "wine", "--target", "label"], "apply to CSV or Parquet files"
    ),
    "bad-flag": (None, ["--frobnicate"], "unrecognized arguments"),
    "missing-config": (None, ["--config", "{tmp}/none.toml"], "config file"),
    "unknown-config-key": ("config", ["--config", "{tmp}/bad.toml"], "colour: is not a known option"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_one_line_exit_2_nothing_written(case: str, tmp_path: Path, write_csv, capsys) -> None:
    mutate, argv, expected = BAD[case]
    out_dir = tmp_path / "out"
    (tmp_path / "bad.toml").write_text('colour = "red"\n')
    argv = [a.format(tmp=tmp_path) for a in argv]
    if mutate != "builtin" and "--data" not in argv:
        argv = ["--data", str(write_csv(mutate=mutate if callable(mutate) else None)), *argv]
    code, out, err = run([*argv, "--out", str(out_dir), "--quiet"], capsys)
    assert code == 2
    assert expected in err, err
    assert err.startswith("lockgate train: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path: Path, capsys) -> None:
    args = ["--model", "naive_bayes", "--trials", "1", "--out", str(tmp_path), "--quiet"]
    assert run(args, capsys)[0] == 0
    sha = ModelBundle.load(tmp_path / "demo-1").onnx_sha256
    code, _, err = run(args, capsys)
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert run([*args, "--overwrite", "--seed", "9"], capsys)[0] == 0
    assert ModelBundle.load(tmp_path / "demo-1").onnx_sha256 != sha
    assert [p.name for p in tmp_path.iterdir()] == ["demo-1"]


def test_output_under_a_file_fails_before_training(tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    code, _, err = run(["--out", str(tmp_path / "file" / "sub"), "--quiet"], capsys)
    assert code == 2 and "it is a file, not a directory" in err and err.count("\n") == 1


def test_real_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lockgate", "train", "--data", str(tmp_path / "x.csv"), "--target", "y"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"lockgate train: data file {tmp_path / 'x.csv'} does not exist "
        "(pass an existing CSV path or one of: breast_cancer, wine, digits, imbalanced, sequences, "
        "mixed_inputs)"
    ]
    assert not (tmp_path / "out").exists()
