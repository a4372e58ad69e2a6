"""Named columns and per-column v2 tensors in-process: the validator and the tensor codec on a real
mixed-type bundle (a two-input ONNX graph run by ONNX Runtime), no server."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from serving.errors import InvalidInputError
from serving.predictor import OnnxPredictor
from serving.tensors import decode_v2_request
from serving.validation import RowValidator
from tests.tables import demo_table, expected_probabilities, mixed_bundle, sample_rows, split_rows

TABLE = demo_table()


@pytest.fixture(scope="module")
def predictor(bundle_root: Path, demo_bundle: Path) -> OnnxPredictor:
    return OnnxPredictor.from_bundle(mixed_bundle(bundle_root / "tables-units", demo_bundle, TABLE))


@pytest.fixture(scope="module")
def validator(predictor: OnnxPredictor) -> RowValidator:
    return RowValidator(predictor.card, 1024)


def refusal(fn, *args) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        fn(*args)
    return info.value


@pytest.mark.parametrize("spelling", [True, False, 1, 0, "Yes", "NO", " true ", "FALSE", "yes"])
def test_boolean_spellings(validator, spelling):
    row = {**sample_rows(TABLE, 1)[0], "owner": spelling}
    _, cat, _ = validator.from_instances([row])
    truthy = spelling is True or spelling == 1 or str(spelling).strip().lower() in ("yes", "true")
    assert cat[0, 1] == ("true" if truthy else "false")


@pytest.mark.parametrize("spelling", [2, 1.5, "maybe", [True]])
def test_non_booleans_are_refused(validator, spelling):
    error = refusal(validator.from_instances, [{**sample_rows(TABLE, 1)[0], "owner": spelling}])
    assert error.code == "wrong_kind" and "instances[0].owner" in error.message


def test_an_extra_key_in_place_of_a_missing_one(predictor):
    row = {k: v for k, v in sample_rows(TABLE, 1)[0].items() if k != "owner"} | {"ownr": True}
    strict = RowValidator(predictor.card, 1024)
    assert refusal(strict.from_instances, [row]).code == "unknown_column"
    lenient = RowValidator(predictor.card, 1024, allow_extra_columns=True)
    error = refusal(lenient.from_instances, [row])
    assert error.code == "missing_value" and "owner" in error.message and "absent" not in error.message


def test_instances_give_the_graph_what_it_expects(predictor, validator):
    rows = sample_rows(TABLE, 7)
    rows[2]["age"] = None
    rows[3]["city"] = "Oslo"
    x, cat, notes = validator.from_instances(rows)
    assert x.dtype == np.float32 and x.flags.c_contiguous and np.isnan(x[2, 0])
    assert notes is not None and notes[3] and not notes[0]
    _, probabilities = predictor.predict(x, cat)
    assert np.allclose(probabilities, expected_probabilities(TABLE, *split_rows(TABLE, rows)), atol=2e-6)


def test_too_large_integers_are_refused(validator):
    row = {**sample_rows(TABLE, 1)[0], "income": 10**400}
    assert refusal(validator.from_instances, [row]).code == "value_overflow"


def _binary_request(tensors: list[tuple[str, str, bytes, int]]) -> tuple[bytes, str]:
    header = json.dumps(
        {
            "inputs": [
                {"name": n, "datatype": d, "shape": [rows], "parameters": {"binary_data_size": len(raw)}}
                for n, d, raw, rows in tensors
            ]
        }
    ).encode()
    return header + b"".join(raw for _, _, raw, _ in tensors), str(len(header))


def _bytes(values: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


def _tensors(age: float, income: float, city: bytes = b"Lyon") -> list[tuple[str, str, bytes, int]]:
    return [
        ("age", "FP32", np.array([age], dtype=np.float32).tobytes(), 1),
        ("income", "FP64", np.array([income], dtype=np.float64).tobytes(), 1),
        ("city", "BYTES", _bytes([city]), 1),
        ("owner", "BOOL", np.array([True]).tobytes(), 1),
        ("plan", "BYTES", _bytes([b"pro"]), 1),
        ("channel", "BYTES", _bytes([b"web"]), 1),
    ]


def test_binary_column_tensors_nan_is_missing(validator):
    body, length = _binary_request(_tensors(float("nan"), 50.0))
    request = decode_v2_request(body, length, validator)
    assert np.isnan(request.numeric[0, 0]) and request.numeric[0, 1] == 50.0
    assert request.categorical.tolist() == [["Lyon", "true", "pro", "web"]]
    body, length = _binary_request(_tensors(30.0, float("nan")))
    error = refusal(decode_v2_request, body, length, validator)
    assert error.code == "missing_value" and "input 'income'[0]" in error.message


def test_bad_bytes_tensors_are_refused(validator):
    body, length = _binary_request(_tensors(30.0, 50.0, city=b"\xffLyon"))
    assert refusal(decode_v2_request, body, length, validator).code == "not_utf8"
    tensors = _tensors(30.0, 50.0)
    tensors[2] = ("city", "BYTES", _bytes([b"Lyon"])[:-1], 1)
    body, length = _binary_request(tensors)
    assert "complete elements" in refusal(decode_v2_request, body, length, validator).message


def test_column_tensors_with_the_wrong_datatype_or_shape(validator):
    base = {"name": "city", "datatype": "FP32", "shape": [1], "data": [1.0]}
    error = refusal(decode_v2_request, json.dumps({"inputs": [base]}).encode(), None, validator)
    assert error.code == "wrong_kind" and "BYTES" in error.message
    wide = {**base, "datatype": "BYTES", "shape": [1, 2], "data": ["a", "b"]}
    error = refusal(decode_v2_request, json.dumps({"inputs": [wide]}).encode(), None, validator)
    assert "[N] or [N, 1]" in error.message
    legacy = {"name": "input", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}
    error = refusal(decode_v2_request, json.dumps({"inputs": [legacy]}).encode(), None, validator)
    assert error.code == "use_column_tensors" and "city" in error.fix


def test_all_numeric_models_take_column_tensors_and_the_legacy_matrix(demo_bundle):
    numeric = RowValidator(OnnxPredictor.from_bundle(demo_bundle).card, 1024)
    x = np.load(demo_bundle / "reference.npz")["inputs"][:2].astype(np.float64)
    legacy = {"name": "input", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}
    by_matrix = decode_v2_request(json.dumps({"inputs": [legacy]}).encode(), None, numeric)
    columns = [
        {"name": name, "datatype": "FP64", "shape": [2], "data": x[:, j].tolist()}
        for j, name in enumerate(numeric.names)
    ]
    by_columns = decode_v2_request(json.dumps({"inputs": columns[::-1]}).encode(), None, numeric)
    assert by_columns.categorical is None
    assert np.array_equal(by_matrix.numeric, by_columns.numeric)
    error = refusal(decode_v2_request, json.dumps({"inputs": columns[1:]}).encode(), None, numeric)
    assert error.code == "missing_value" and numeric.names[0] in error.message
