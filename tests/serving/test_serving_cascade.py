"""Issue 13 end to end: a two-model cascade served by pinned composition in one real gateway.

a (sex from island + measurements) is trained, gated by the real gate, registered and released; b is
trained on b's raw columns plus a:1's ONNX output (``a__p_male``), gated, registered (which records
b's model-consumer declaration on a) and released. A consumer declared only for b calls b with raw
columns and gets a:1's pin in the answer; a's own consumer is unaffected; a:2 is released and b still
uses a:1 (answer, metrics, /readyz); a pin recorded through ``Registry.record_pin`` moves b to a:2 at the
gateway's next poll; c, fed by a's outputs without a declared edge, is refused and named in /readyz.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from cascade_registry.artifacts import FeatureSpec, ModelBundle
from serving.batcher import MicroBatcher
from serving.catalog import Catalog, RegistrySource, build_catalog
from serving.columns import TableSchema
from serving.composition import CompositionError, Upstream, compose_parts, raw_card
from serving.settings import ServeSettings
from tests.bundles import gate_bundle, open_trusting
from tests.cascades import A_INPUTS, B_RAW, penguins, run_onnx, train_a, train_b

from .conftest import write_gate
from .test_serving_registry import wait_for

ROWS = 12


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory):
    """Bundles a:1, a:2, b:1 (on a:1), c:1 (a's output, no declared edge), gated; a registry with a:1 and
    b:1 released, consumers 'shop' (declared for b and c only) and 'lab' (declared for a)."""
    root = tmp_path_factory.mktemp("cascade")
    a1, a2 = train_a(root, 1, seed=0), train_a(root, 2, seed=1)
    b1 = train_b(root, a1)
    c1 = train_b(root, a1, name="c", edge="undeclared", seed=1)
    for bundle in (a1, a2, b1):
        gate_bundle(bundle)
    write_gate(c1)  # c is only ever refused: a verdict as the gate writes it is enough
    reg = open_trusting(f"sqlite:///{root / 'registry.db'}")
    for bundle in (a1, b1, c1):
        reg.register(bundle)
    reg.release("a:1")
    reg.release("b:1")
    reg.release("c:1")
    for consumer, models in (("shop", ("b", "c")), ("lab", ("a",))):
        reg.add_consumer(consumer, owner="tests")
        for model in models:
            reg.declare(consumer, model)
    keys = {c: reg.issue_key(c) for c in ("shop", "lab")}
    try:
        yield {"root": root, "reg": reg, "keys": keys, "a1": a1, "a2": a2, "b1": b1}
    finally:
        reg.close()


def _instances(columns: list[str]) -> list[dict]:
    frame = penguins().iloc[:ROWS]
    return [
        {c: (None if isinstance(v, float) and np.isnan(v) else v) for c, v in row.items()}
        for row in frame[columns].to_dict(orient="records")
    ]


def _call(gw, key: str, model: str, columns: list[str]) -> httpx.Response:
    return httpx.post(
        gw.url + "/predict",
        json={"model": model, "instances": _instances(columns)},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def _expected_b(a: Path, b: Path) -> np.ndarray:
    """b's probabilities on the first rows with a's ONNX output fed in: computed without the gateway."""
    frame = penguins().iloc[:ROWS].copy()
    frame["a__p_male"] = run_onnx(a, frame)[:, 1]
    return run_onnx(b, frame)


def _probabilities(answer: dict, classes: list[str]) -> np.ndarray:
    return np.array([[p["probabilities"][c] for c in classes] for p in answer["predictions"]])


def _sample(metrics: str, name: str, **labels: object) -> float:
    """The value of the series ``name`` whose labels include ``labels`` (0 when absent)."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(w in line.split("}")[0] for w in wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _rows(metrics: str, model: str, version: int, role: str) -> float:
    return _sample(metrics, "lockgate_predicted_rows_total", model=model, version=version, role=role)


def test_cascade_end_to_end(cascade, start_gateway):
    reg, keys = cascade["reg"], cascade["keys"]
    a1, a2, b1 = cascade["a1"], cascade["a2"], cascade["b1"]
    gw = start_gateway(
        "--registry-url", f"sqlite:///{cascade['root'] / 'registry.db'}", "--poll-interval", "0.3"
    )
    wait_for(lambda: "b:1" in httpx.get(gw.url + "/readyz").json()["serving"], what="b served")
    ready = httpx.get(gw.url + "/readyz").json()
    assert sorted(ready["serving"]) == ["a:1", "b:1"] and ready["parts"] == []
    assert "c:1" in ready["missing"] and "undeclared composition" in ready["missing"]["c:1"]
    assert "/" not in ready["missing"]["c:1"]  # no file-system paths

    # a consumer of b (not declared for a) sends b's raw columns only and gets a:1's pin in the answer
    b_classes = ModelBundle.load(b1).card.classes
    sha_a1, sha_a2 = ModelBundle.load(a1).onnx_sha256, ModelBundle.load(a2).onnx_sha256
    answer = _call(gw, keys["shop"], "b", B_RAW)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"]["upstream"] == [{"name": "a", "version": 1, "sha256": sha_a1}]
    np.testing.assert_allclose(_probabilities(answer.json(), b_classes), _expected_b(a1, b1), atol=2e-6)
    assert _call(gw, keys["shop"], "a", A_INPUTS).status_code == 403  # composition is not access to a
    # the caller sends raw columns: a__p_male is not one of them
    detail = httpx.get(gw.url + "/models/b", headers={"Authorization": f"Bearer {keys['shop']}"}).json()
    assert detail["inputs"]["features"] == B_RAW and detail["model"]["upstream"][0]["version"] == 1

    # a direct consumer of a is unaffected, and a's own answer is what the composition fed b
    direct = _call(gw, keys["lab"], "a", A_INPUTS)
    assert direct.status_code == 200 and direct.json()["model"]["upstream"] == []
    a_classes = ModelBundle.load(a1).card.classes
    np.testing.assert_allclose(
        _probabilities(direct.json(), a_classes), run_onnx(a1, penguins().iloc[:ROWS]), atol=1e-6
    )

    # a:2 released for direct callers; b keeps a:1 (answer, metrics, /readyz)
    reg.register(a2)
    reg.release("a:2", waiver="b:1 stays pinned to a:1 in the gateway until it is revalidated")
    wait_for(lambda: _call(gw, keys["lab"], "a", A_INPUTS).json()["model"]["version"] == 2, what="a:2")
    before = httpx.get(gw.url + "/metrics").text
    answer = _call(gw, keys["shop"], "b", B_RAW)
    assert answer.status_code == 200 and answer.json()["model"]["upstream"][0]["version"] == 1
    np.testing.assert_allclose(_probabilities(answer.json(), b_classes), _expected_b(a1, b1), atol=2e-6)
    after = httpx.get(gw.url + "/metrics").text
    assert _rows(after, "a", 1, "upstream") - _rows(before, "a", 1, "upstream") == ROWS
    assert _rows(after, "a", 2, "upstream") == 0 and _rows(after, "a", 2, "direct") >= ROWS
    ready = httpx.get(gw.url + "/readyz").json()
    assert sorted(ready["serving"]) == ["a:2", "b:1"] and ready["parts"] == ["a:1"]
    assert _sample(after, "lockgate_model_info", model="a", version=1, sha256=sha_a1, role="pin") == 1

    # a recorded pin (what a passing 'registry revalidate b:1 --upstream a:2' writes) moves b to a:2
    reg.record_pin("b:1", "a:2", evidence={"test": "end to end"}, actor="tests")
    wait_for(
        lambda: _call(gw, keys["shop"], "b", B_RAW).json()["model"]["upstream"][0]["version"] == 2,
        what="b on a:2",
    )
    answer = _call(gw, keys["shop"], "b", B_RAW).json()
    assert answer["model"]["upstream"] == [{"name": "a", "version": 2, "sha256": sha_a2}]
    np.testing.assert_allclose(_probabilities(answer, b_classes), _expected_b(a2, b1), atol=2e-6)
    assert _rows(httpx.get(gw.url + "/metrics").text, "a", 2, "upstream") >= ROWS
    assert httpx.get(gw.url + "/readyz").json()["parts"] == []

    # the v2 endpoint composes too: one tensor per raw column
    v2 = httpx.post(
        gw.url + "/v2/models/b/infer",
        json={"inputs": _v2_tensors(B_RAW)},
        headers={"Authorization": f"Bearer {keys['shop']}"},
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["parameters"]["upstream"] == f"a:2@{sha_a2}"
    got = np.array(v2.json()["outputs"][1]["data"]).reshape(ROWS, -1)
    np.testing.assert_allclose(got, _expected_b(a2, b1), atol=2e-6)

    # the undeclared composition stays refused: c is named in /readyz, a caller gets 404 saying why
    refused = _call(gw, keys["shop"], "c", B_RAW)
    assert refused.status_code == 404 and "undeclared composition" in refused.json()["error"]["message"]


def _v2_tensors(columns: list[str]) -> list[dict]:
    frame = penguins().iloc[:ROWS]
    out = []
    for c in columns:
        values = frame[c].tolist()
        numeric = frame[c].dtype.kind in "fi"
        out.append({"name": c, "shape": [ROWS], "datatype": "FP64" if numeric else "BYTES", "data": values})
    return out


def test_upstream_part_equals_the_upstream_and_refuses_undeclared_edges(cascade):
    """In process: the composition's upstream part on a's own reference rows equals a's ONNX output
    exactly and a's reference.npz probabilities within the export parity limit; a plan whose edge the
    registry does not declare is not composed."""
    source = RegistrySource(cascade["reg"])
    settings = ServeSettings()

    def batcher(predictor):
        return MicroBatcher(predictor, 512, False)

    releases = [r for r in source.releases() if r.name in ("a", "b")]
    catalog = build_catalog(releases, Catalog(), settings, False, batcher, edge_refusal=source.edge_refusal)
    part = catalog.models["b"].composition.parts[0]
    a = cascade["a1"] if part.version == 1 else cascade["a2"]  # b's effective pin
    reference = np.load(a / "reference.npz")
    card = ModelBundle.load(a).card
    numeric, categorical = (
        [f.name for f in card.numeric_features],
        [f.name for f in card.categorical_features],
    )
    rows = [
        {
            **dict(zip(numeric, map(float, num), strict=True)),
            **dict(zip(categorical, cat, strict=True)),
            "year": 2008,
        }
        for num, cat in zip(reference["inputs"], reference["categorical_inputs"].tolist(), strict=True)
    ]
    x, cat, _ = catalog.models["b"].validator.from_instances(rows)
    got = asyncio.run(part.outputs(x, cat))[:, 0]
    feeds = {"input": reference["inputs"], "categorical": reference["categorical_inputs"].astype(object)}
    direct = ort.InferenceSession(str(a / "model.onnx")).run(["probabilities"], feeds)[0][:, 1]
    np.testing.assert_array_equal(got, direct)
    np.testing.assert_allclose(got, reference["probabilities"][:, 1], atol=1e-4)

    assert source.edge_refusal("b", "a", part.version) is None
    assert "not its pinned version 7" in source.edge_refusal("b", "a", 7)
    assert "no model-consumer declaration" in source.edge_refusal("shop", "a", 1)
    refused = build_catalog(
        releases,
        Catalog(),
        settings,
        False,
        batcher,
        edge_refusal=lambda consumer, up, v: f"{consumer} has no model-consumer declaration for {up}",
    )
    assert "b" not in refused.models and "a" in refused.models
    assert "undeclared edge" in refused.missing["b:1"]


def test_label_output_and_misfits(cascade):
    """``output="label"`` feeds the class name as a categorical feature in the card's column order; a pin
    whose classes or columns do not fit the downstream card is refused when the catalog is built."""
    b_card, a_card = ModelBundle.load(cascade["b1"]).card, ModelBundle.load(cascade["a1"]).card
    label = FeatureSpec(name="a__label", kind="categorical", levels=a_card.classes, upstream="a")
    ref = b_card.upstream[0].model_copy(update={"output": "label", "features": ["a__label"]})
    features = [f for f in b_card.features if f.name != "a__p_male"] + [label]
    card = b_card.model_copy(update={"features": features, "upstream": [ref]})
    raw = TableSchema(raw_card(card), 3e38).columns
    seen: list = []

    async def upstream(x, cat):
        return np.array([1, 0]), np.array([[0.2, 0.8], [0.9, 0.1]], dtype=np.float32)

    async def downstream(x, cat):
        seen.append((x, cat))
        return np.zeros(2, dtype=np.int64), np.zeros((2, 3), dtype=np.float32)

    a_columns = TableSchema(a_card, 3e38).columns
    counted: list[int] = []
    up = Upstream(ref, 1, "0" * 64, a_card.classes, a_columns, upstream, counted.append)
    composition = compose_parts(card, raw, [up], downstream)
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    asyncio.run(composition.predict(x, np.array([["Biscoe"], ["Dream"]], dtype=object)))
    x_seen, cat_seen = seen[0]
    np.testing.assert_array_equal(x_seen, x)  # the raw numeric columns, untouched
    assert cat_seen.tolist() == [["Biscoe", "male"], ["Dream", "female"]] and counted == [2]

    wrong = up.__class__(b_card.upstream[0], 1, "0" * 64, ["x", "y"], a_columns, upstream, counted.append)
    with pytest.raises(CompositionError, match="probabilities of classes"):
        compose_parts(b_card, TableSchema(raw_card(b_card), 3e38).columns, [wrong], downstream)
    with pytest.raises(CompositionError, match="not among its raw columns"):
        compose_parts(card, [c for c in raw if c.name != "island"], [up], downstream)
