"""``lockgate predict BUNDLE CSV``: a bundle's ONNX model on a CSV file, the same answers as the
predictor, clear errors; and the input validator's feature-name message says only what is wrong."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cascade_registry.artifacts import ModelBundle
from serving.errors import InvalidInputError
from serving.predict_cli import main
from serving.predictor import OnnxPredictor
from serving.validation import RowValidator


@pytest.fixture(scope="module")
def rows_csv(demo_bundle: Path, rows: list[list[float]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    names = ModelBundle.load(demo_bundle).card.feature_names
    path = tmp_path_factory.mktemp("predict") / "rows.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", *reversed(names)])  # any column order, extra columns ignored
        writer.writerows([i, *(repr(v) for v in reversed(row))] for i, row in enumerate(rows))
    return path


def test_predictions_match_the_predictor(demo_bundle: Path, rows, rows_csv: Path, capsys) -> None:
    assert main([str(demo_bundle), str(rows_csv)]) == 0
    out = list(csv.reader(capsys.readouterr().out.splitlines()))
    predictor = OnnxPredictor.from_bundle(demo_bundle)
    labels, proba = predictor.predict(np.array(rows, dtype=np.float32))
    assert out[0] == ["label", *(f"p_{c}" for c in predictor.classes)]
    assert [r[0] for r in out[1:]] == [predictor.classes[int(i)] for i in labels]
    np.testing.assert_allclose(np.array([r[1:] for r in out[1:]], dtype=float), proba, atol=1e-5)


def test_json_and_out_file(demo_bundle: Path, rows_csv: Path, tmp_path: Path, capsys) -> None:
    assert main([str(demo_bundle), str(rows_csv), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "demo:1" and len(data["predictions"]) == 8
    assert abs(sum(data["predictions"][0]["probabilities"].values()) - 1) < 1e-5
    assert main([str(demo_bundle), str(rows_csv), "--out", str(tmp_path / "scored.csv")]) == 0
    assert "8 rows ->" in capsys.readouterr().err
    assert (tmp_path / "scored.csv").read_text().startswith("label,")


def test_an_ungated_bundle_is_run_with_a_warning(demo_bundle: Path, rows_csv: Path, tmp_path: Path, capsys):
    bundle = shutil.copytree(demo_bundle, tmp_path / "demo-1")
    (bundle / "gate.json").unlink()
    assert main([str(bundle), str(rows_csv)]) == 0
    assert "warning: " in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("a,b\n1,2\n", "lacks 30 of the model's 30 feature columns"),
        ("", "is empty"),
        (None, "cannot read"),
    ],
)
def test_bad_csv_is_one_line_exit_2(demo_bundle: Path, tmp_path: Path, capsys, content, fragment) -> None:
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_text(content)
    assert main([str(demo_bundle), str(path)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_non_numeric_and_missing_values(demo_bundle: Path, rows_csv: Path, tmp_path: Path, capsys) -> None:
    lines = rows_csv.read_text().splitlines()
    for value, fragment in (("x", "line 2: a feature value is not a number"), ("", "is NaN")):
        cells = lines[1].split(",")
        cells[1] = value
        path = tmp_path / "bad.csv"
        path.write_text("\n".join([lines[0], ",".join(cells)]) + "\n")
        assert main([str(demo_bundle), str(path)]) == 2
        assert fragment in capsys.readouterr().err


def test_not_a_bundle(tmp_path: Path, rows_csv: Path, capsys) -> None:
    assert main([str(tmp_path), str(rows_csv)]) == 2
    assert "is not a usable bundle" in capsys.readouterr().err


def test_feature_name_errors_name_only_what_is_wrong(demo_bundle: Path) -> None:
    card = ModelBundle.load(demo_bundle).card
    validator = RowValidator(card, max_batch_rows=10)
    row = dict.fromkeys(card.feature_names, 1.0)
    del row[card.feature_names[0]]
    with pytest.raises(InvalidInputError) as missing:
        validator.to_matrix([row])
    assert "missing features" in str(missing.value.message) and "unknown" not in missing.value.message
    row = {**dict.fromkeys(card.feature_names, 1.0), "extra": 1.0}
    with pytest.raises(InvalidInputError) as unknown:
        validator.to_matrix([row])
    assert "unknown features ['extra']" in unknown.value.message and "missing" not in unknown.value.message
