"""Real public tables end to end (issue 11): raw CSV -> ``lockgate train`` -> the real gate -> registry
register + release -> a real gateway -> named-column requests built from the raw CSV rows, answered with
the probabilities ``lockgate predict`` computes offline and the trainer measured on its test split.

Each table is trained once per session (``real_table``, tests/conftest.py: one calibration split, one
trial); one gateway serves the four models for the whole module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from cascade_registry.artifacts import ModelBundle
from loadtests.sources import target_from_bundle
from serving.predict_cli import main as predict_main
from tests.load_payloads import send_load_payloads
from tests.real_tables import TABLES
from tests.serving.conftest import Gateway, released_gateway

#: raw CSV rows sent per table (each table's first rows, gaps included)
ROWS = 120


@pytest.fixture(scope="module")
def served(real_table, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str]]:
    """The four tables' models registered and released in one SQLite registry behind one gateway."""
    bundles = [real_table(name).bundle for name in TABLES]
    with released_gateway(tmp_path_factory.mktemp("real-tables"), bundles, "analyst") as served:
        yield served


def _instances(csv: Path, columns: list[str], rows: int) -> list[dict]:
    """What a consumer sends: the CSV's feature columns by name, an empty cell as null."""
    frame = pd.read_csv(csv, nrows=rows)[columns].astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


def _ask(served: tuple[Gateway, str], model: str, instances: list[dict], classes: list[str]) -> np.ndarray:
    gw, key = served
    r = httpx.post(gw.url + "/predict", json={"model": model, "instances": instances},
                   headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200, r.text
    answer = r.json()
    return np.array([[p["probabilities"][c] for c in classes] for p in answer["predictions"]])


@pytest.mark.parametrize("name", list(TABLES))
def test_raw_csv_rows_by_column_name_match_lockgate_predict(served, real_table, name, tmp_path, capsys):
    table = real_table(name)
    card = ModelBundle.load(table.bundle).card
    assert any(f.kind != "numeric" for f in card.features)  # a string or boolean column
    assert any(f.missing_in_training for f in card.features)  # gaps in training
    got = _ask(served, name, _instances(table.spec.path, [f.name for f in card.features], ROWS), card.classes)
    head = tmp_path / "head.csv"
    pd.read_csv(table.spec.path, nrows=ROWS).to_csv(head, index=False)  # labels and extra columns kept
    assert predict_main([str(table.bundle), str(head), "--json"]) == 0
    offline = json.loads(capsys.readouterr().out)
    expected = np.array([[p["probabilities"][c] for c in card.classes] for p in offline["predictions"]])
    assert got.shape == (min(ROWS, len(pd.read_csv(table.spec.path))), len(card.classes))
    assert np.allclose(got, expected, atol=1e-6)  # predict rounds to 6 decimals


@pytest.mark.parametrize("name", list(TABLES))
def test_the_trainers_test_rows_get_the_probabilities_it_measured(served, real_table, name):
    """reference.npz holds the raw test-split rows and the native model's probabilities for them."""
    table = real_table(name)
    card = ModelBundle.load(table.bundle).card
    with np.load(table.bundle / "reference.npz", allow_pickle=False) as ref:
        X, C, measured = ref["inputs"], ref["categorical_inputs"], ref["probabilities"]
    numeric = [f.name for f in card.features if f.kind == "numeric"]
    strings = [f.name for f in card.features if f.kind != "numeric"]
    instances = [
        {**{n: None if np.isnan(v) else float(v) for n, v in zip(numeric, x, strict=True)},
         **{n: v or None for n, v in zip(strings, c, strict=True)}}
        for x, c in zip(X.tolist(), C.tolist(), strict=True)
    ]
    got = _ask(served, name, instances, card.classes)
    assert np.abs(got - measured).max() <= card.export.parity_max_abs_diff + 1e-6


def test_lockgate_predict_names_the_bad_cell_of_a_raw_csv(real_table, tmp_path, capsys):
    table = real_table("penguins")
    frame = pd.read_csv(table.spec.path, nrows=5)
    frame["bill_length_mm"] = frame["bill_length_mm"].astype(object)
    frame.loc[3, "bill_length_mm"] = "long"
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    assert predict_main([str(table.bundle), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "rows[0:][3].bill_length_mm" in err and "'long'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", list(TABLES))
def test_a_load_test_of_a_real_table_sends_named_rows_the_gateway_takes(served, real_table, name):
    card = ModelBundle.load(real_table(name).bundle).card
    target = target_from_bundle(real_table(name).bundle)
    assert target.named and target.features == [f.name for f in card.features]
    assert any(v is None for row in target.rows for v in row) or not any(
        f.missing != "error" for f in card.features)  # gaps are sent as null where the card allows them
    gw, key = served
    assert send_load_payloads(gw.url, key, target) == []
