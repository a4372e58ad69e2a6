"""Named-column tables through the real gateway (issue 11): a two-input ONNX graph (numbers + strings),
registered and released in a real registry, served by ``lockgate serve``, called over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving.conftest import Gateway, released_gateway
from tests.tables import demo_table, expected_probabilities, mixed_bundle, sample_rows, split_rows

TABLE = demo_table()


@pytest.fixture(scope="module")
def tabular_bundle(bundle_root: Path, demo_bundle: Path) -> Path:
    return mixed_bundle(bundle_root / "tables", demo_bundle, TABLE)


@pytest.fixture(scope="module")
def served(tabular_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str]]:
    """The tabular model released in a SQLite registry, behind a real gateway; (gateway, key)."""
    with released_gateway(tmp_path_factory.mktemp("tables"), [tabular_bundle]) as served:
        yield served


def predict(served: tuple[Gateway, str], body: dict) -> httpx.Response:
    gw, key = served
    return httpx.post(
        gw.url + "/predict", json={"model": "tabular", **body}, headers={"Authorization": f"Bearer {key}"}
    )


def probabilities(answer: dict) -> np.ndarray:
    return np.array([[p["probabilities"][c] for c in TABLE.classes] for p in answer["predictions"]])


def test_named_columns_in_any_order_match_the_graph(served):
    rows = sample_rows(TABLE, 5)
    shuffled = [dict(reversed(list(r.items()))) for r in rows]
    r = predict(served, {"instances": shuffled})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert [p["warnings"] for p in answer["predictions"]] == [[]] * 5
    assert np.allclose(
        probabilities(answer), expected_probabilities(TABLE, *split_rows(TABLE, rows)), atol=2e-6
    )


def test_missing_values_where_the_card_allows_them(served):
    row = sample_rows(TABLE, 1)[0]
    gaps = [
        {**row, "age": None},
        {k: v for k, v in row.items() if k != "age"},
        {**row, "city": None},
        {**row, "city": ""},
        {k: v for k, v in row.items() if k != "channel"},
    ]
    r = predict(served, {"instances": gaps})
    assert r.status_code == 200, r.text
    assert np.allclose(
        probabilities(r.json()), expected_probabilities(TABLE, *split_rows(TABLE, gaps)), atol=2e-6
    )
    for column, body in [
        ("income", {**row, "income": None}),
        ("owner", {k: v for k, v in row.items() if k != "owner"}),
        ("plan", {**row, "plan": ""}),
    ]:
        refused = predict(served, {"instances": [row, body]})
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "missing_value" and f"instances[1].{column}" in error["message"]


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"income": "12k"}, "wrong_kind", ["instances[0].income", "'12k'", "numeric", "a number"]),
        ({"city": 75001}, "wrong_kind", ["instances[0].city", "75001", "categorical", "string"]),
        ({"owner": "maybe"}, "wrong_kind", ["instances[0].owner", "'maybe'", "true or false"]),
        ({"age": [1]}, "wrong_kind", ["instances[0].age", "a list"]),
        ({"plan": "enterprise"}, "unknown_level", ["instances[0].plan", "'enterprise'", "basic"]),
        ({"cty": "Lyon"}, "unknown_column", ["'cty'", "--allow-extra-columns"]),
        ({"income": 1e39}, "value_overflow", ["instances[0].income"]),
    ],
)
def test_wrong_values_name_column_value_and_kind(served, change, code, words):
    row = {**sample_rows(TABLE, 1)[0], **change}
    r = predict(served, {"instances": [row]})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == code, error
    for word in words:
        assert word in error["message"] + error["fix"], (word, error)


def test_unseen_levels_follow_the_card(served):
    row = sample_rows(TABLE, 1)[0]
    rows = [{**row, "city": "Berlin"}, {**row, "channel": "fax"}, {**row, "owner": "YES"}]
    r = predict(served, {"instances": rows})
    assert r.status_code == 200, r.text
    warned, ignored, yes = (p["warnings"] for p in r.json()["predictions"])
    assert len(warned) == 1 and "city='Berlin'" in warned[0] and "other" in warned[0]
    assert ignored == [] and yes == []
    assert np.allclose(
        probabilities(r.json()),
        expected_probabilities(TABLE, *split_rows(TABLE, [rows[0], rows[1], {**row, "owner": True}])),
        atol=2e-6,
    )


def test_the_card_lists_the_columns(served):
    gw, key = served
    detail = httpx.get(gw.url + "/models/tabular", headers={"Authorization": f"Bearer {key}"}).json()
    columns = {c["name"]: c for c in detail["inputs"]["columns"]}
    assert columns["city"]["kind"] == "categorical" and columns["city"]["levels"] == ["Lyon", "Nice", "Paris"]
    assert columns["age"]["missing_allowed"] and not columns["income"]["missing_allowed"]
    assert detail["inputs"]["send"] == "instances"


def test_positional_rows_are_refused_for_mixed_models(served):
    r = predict(served, {"inputs": [[1.0, 2.0]]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "use_instances"
    assert "instances" in r.json()["error"]["fix"]
    both = predict(served, {"inputs": [[1.0]], "instances": sample_rows(TABLE, 1)})
    assert both.status_code == 422 and both.json()["error"]["code"] == "bad_body"


def test_hostile_bounds_hold_for_instances(served):
    gw, key = served
    deep = b'{"model": "tabular", "instances": [{"city": ' + b"[" * 40 + b"]" * 40 + b"}]}"
    r = httpx.post(
        gw.url + "/predict",
        content=deep,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "too_deep"
    keyless = httpx.post(gw.url + "/predict", json={"model": "tabular", "instances": sample_rows(TABLE, 1)})
    assert keyless.status_code == 401


def test_open_inference_protocol_one_tensor_per_column(served):
    import tritonclient.http as triton

    gw, key = served
    auth = {"Authorization": f"Bearer {key}"}
    client = triton.InferenceServerClient(url=gw.url.removeprefix("http://"))
    try:
        meta = client.get_model_metadata("tabular", headers=auth)
        assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
            ("age", "FP32"),
            ("city", "BYTES"),
            ("income", "FP32"),
            ("owner", "BOOL"),
            ("plan", "BYTES"),
            ("channel", "BYTES"),
        ]
        rows = sample_rows(TABLE, 4)
        rows[1]["city"] = "Berlin"
        numeric, categorical = split_rows(TABLE, rows)
        expected = expected_probabilities(TABLE, numeric, categorical)
        for binary in (False, True):
            tensors = []
            for name, kind, *_ in TABLE.columns:
                values = [r[name] for r in rows]
                dtype = {"numeric": "FP32", "categorical": "BYTES", "boolean": "BOOL"}[kind]
                array = np.array(values, dtype={"FP32": np.float32, "BYTES": object, "BOOL": bool}[dtype])
                tensor = triton.InferInput(name, [len(rows)], dtype)
                tensor.set_data_from_numpy(array, binary_data=binary)
                tensors.append(tensor)
            result = client.infer("tabular", tensors, headers=auth)
            assert np.allclose(result.as_numpy("probabilities"), expected, atol=2e-6), binary
            warnings = json.loads(result.get_response()["parameters"]["warnings"])
            assert warnings[0] == [] and "city='Berlin'" in warnings[1][0]
        wrong = triton.InferInput("city", [len(rows)], "FP32")
        wrong.set_data_from_numpy(np.zeros(len(rows), dtype=np.float32), binary_data=False)
        with pytest.raises(triton.InferenceServerException, match="city"):
            client.infer("tabular", [t for t in tensors if t.name() != "city"] + [wrong], headers=auth)
    finally:
        client.close()


def test_extra_columns_can_be_allowed(tabular_bundle, start_gateway):
    gw = start_gateway("--canary", str(tabular_bundle), "--allow-extra-columns")
    row = {**sample_rows(TABLE, 1)[0], "note": "ignored"}
    r = httpx.post(gw.url + "/predict", json={"model": "tabular", "instances": [row]})
    assert r.status_code == 200, r.text


def test_all_numeric_models_take_instances_too(canary, demo_bundle, rows):
    names = [f["name"] for f in json.loads((demo_bundle / "card.json").read_text())["features"]]
    instances = [dict(reversed(list(zip(names, row, strict=True)))) for row in rows[:3]]
    named = httpx.post(canary.url + "/predict", json={"model": "demo", "instances": instances})
    positional = httpx.post(canary.url + "/predict", json={"model": "demo", "inputs": rows[:3]})
    assert named.status_code == 200, named.text
    assert named.json()["predictions"] == positional.json()["predictions"]
    gap = httpx.post(
        canary.url + "/predict", json={"model": "demo", "instances": [{**instances[0], names[4]: None}]}
    )
    assert gap.status_code == 422 and f"instances[0].{names[4]}" in gap.json()["error"]["message"]


def test_openapi_describes_instances(canary):
    spec = httpx.get(canary.url + "/openapi.json").json()
    body = spec["components"]["schemas"]["PredictBody"]
    assert "instances" in body["properties"] and "inputs" in body["properties"]
    assert "column" in json.dumps(body["properties"]["instances"])
