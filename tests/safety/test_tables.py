"""The gate on mixed-type models: real public tables (shipped in PyPI packages) train and pass the gate;
the schema-aware bad inputs run; a broken categorical reference or input is refused."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from cascade_registry.artifacts import REFERENCE_FILE
from safety import GatePolicy, run_gate
from tests.bundles import gate_bundle
from tests.real_tables import write_table
from training import TrainConfig, train


def _train(tmp: Path, name: str, **kw) -> Path:
    spec = write_table(name, tmp)
    values = {
        "data": str(spec.path),
        "target": spec.target,
        "drop": spec.drop,
        "trials": 1,
        "calibration_cv": 0,
        "out": tmp / "out",
        "name": name,
        "progress": False,
        "model": "logistic_regression",
        "calibration": "sigmoid",
    } | kw
    return train(TrainConfig(**values))


@pytest.mark.parametrize("name", ["penguins", "cars", "titanic", "synthetic"])
def test_real_and_synthetic_tables_train_and_pass_the_gate(real_table, name: str) -> None:
    inputs = next(c for c in real_table(name).report.checks if c.name == "inputs")
    assert inputs.value["failed"] == 0 and inputs.value["cases"] > 20


def test_penguins_gate_runs_the_schema_cases(real_table) -> None:
    report = real_table("penguins").report
    inputs = next(c for c in report.checks if c.name == "inputs")
    assert "string_in_numeric" in inputs.message  # refused at the edge; the rest got valid answers
    assert next(c for c in report.checks if c.name == "contract").status == "pass"


def test_unknown_error_policy_makes_unseen_levels_edge_refusals(tmp_path: Path) -> None:
    report = gate_bundle(_train(tmp_path, "penguins", unknown_category="error"))
    inputs = next(c for c in report.checks if c.name == "inputs")
    assert "unseen_level" in inputs.message


def test_reference_without_categorical_arrays_fails(real_table, tmp_path: Path) -> None:
    broken = tmp_path / "b"
    shutil.copytree(real_table("penguins").bundle, broken)
    with np.load(broken / REFERENCE_FILE, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "holdout_categorical_inputs"}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (broken / REFERENCE_FILE).write_bytes(buf.getvalue())
    report = run_gate(broken, GatePolicy())
    parity = next(c for c in report.checks if c.name == "parity")
    assert not report.passed and parity.status == "fail" and "holdout_categorical_inputs" in parity.message
