"""Issue 13 end to end: a two-model cascade served by pinned composition in one real gateway.

a (``risky`` from g1..g4 and region, the generated tables of :mod:`training.synthetic`) is trained,
gated by the real gate, registered and released; b is trained with ``lockgate train --upstream a:1``
(its raw columns plus a:1's calibrated P(yes) as ``a__p_yes``), gated, registered (which records b's
model-consumer declaration on a) and released. A consumer declared only for b calls b with raw columns and
gets a:1's pin in the answer; a's own consumer is unaffected; a:2 is released and b still uses a:1
(answer, metrics, /readyz); ``lockgate registry revalidate b:1 --upstream a:2`` records a new pin and the
gateway moves b to a:2 at its next poll; c, fed by a's outputs without a declared edge, is refused and
named in /readyz.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from cascade_registry.artifacts import CARD_FILE, FeatureSpec, ModelBundle, write_json_atomic
from loadtests.sources import target_from_bundle
from lockgate.cli import main as lockgate_main
from serving.app import open_dataplane
from serving.batcher import MicroBatcher
from serving.catalog import Catalog, RegistrySource, build_catalog
from serving.columns import TableSchema
from serving.composition import CompositionError, Upstream, compose_parts, raw_card
from serving.settings import ServeSettings
from tests.bundles import gate_bundle, open_trusting, write_test_key
from tests.cascades import Cascade
from tests.load_payloads import send_load_payloads
from training.synthetic import A_INPUTS, write_cascade_tables
from training.upstream import run_graph

from .conftest import write_gate
from .test_serving_registry import wait_for

ROWS = 12
LR = ("--model", "logistic_regression")


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory):
    """Bundles a:1, a:2, b:1 (``train --upstream a:1``), c:1 (a's output, no declared edge); a registry
    with a:1, b:1 and c:1 released, consumers 'shop' (declared for b and c only) and 'lab' (for a)."""
    root = tmp_path_factory.mktemp("cascade")
    url = f"sqlite:///{root / 'registry.db'}"
    reg = open_trusting(url)
    c = Cascade(root, url, write_cascade_tables(root / "data", rows=500))
    assert c.train_a(*LR) == 0
    gate_bundle(c.bundle("a"))
    reg.register(c.bundle("a"))
    reg.release("a:1")
    assert c.train_b(*LR, "--upstream", "a:1") == 0
    assert c.train_a(*LR, "--seed", "1", "--version", "2") == 0
    b_args = ("--data", str(c.tables["b"]), "--target", "default", "--name", "c", "--seed", "1")
    assert c.train(*b_args, *LR, "--upstream", "a:1") == 0
    for bundle in (c.bundle("b"), c.bundle("a", 2)):
        gate_bundle(bundle)
    c1 = c.bundle("c")  # a card whose features come from a, with its edge to a removed by hand
    write_json_atomic(c1 / CARD_FILE, ModelBundle.load(c1).card.model_copy(update={"upstream": []}))
    write_gate(c1)  # c is only ever refused: a verdict as the gate writes it is enough
    for bundle in (c.bundle("b"), c1):
        reg.register(bundle)
    reg.release("b:1")
    reg.release("c:1")
    for consumer, models in (("shop", ("b", "c")), ("lab", ("a",))):
        reg.add_consumer(consumer, owner="tests")
        for model in models:
            reg.declare(consumer, model)
    keys = {k: reg.issue_key(k) for k in ("shop", "lab")}
    b_card = ModelBundle.load(c.bundle("b")).card
    try:
        yield {
            "root": root,
            "reg": reg,
            "keys": keys,
            "a1": c.bundle("a"),
            "a2": c.bundle("a", 2),
            "b1": c.bundle("b"),
            "frame": pd.read_csv(c.tables["b"]).iloc[:ROWS],
            "raw": [f.name for f in b_card.features if f.upstream is None],
            "fed": b_card.upstream[0].features[0],
        }
    finally:
        reg.close()


def _instances(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    return frame[list(columns)].to_dict(orient="records")


def _call(gw, key: str, model: str, frame: pd.DataFrame, columns: list[str]) -> httpx.Response:
    return httpx.post(
        gw.url + "/predict",
        json={"model": model, "instances": _instances(frame, columns)},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def _graph(bundle: Path, frame: pd.DataFrame) -> np.ndarray:
    """The bundle's probabilities on ``frame``, straight from its graph (training.upstream.run_graph)."""
    b = ModelBundle.load(bundle)
    return run_graph(b.model_path.read_bytes(), b.card, {c: frame[c].to_numpy() for c in frame})[1]


def _expected_b(a: Path, b: Path, frame: pd.DataFrame, fed: str) -> np.ndarray:
    """b's probabilities with a's graph output fed in: computed without the gateway."""
    return _graph(b, frame.assign(**{fed: _graph(a, frame)[:, 1].astype(np.float32)}))


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
    frame, raw, fed, inputs = cascade["frame"], cascade["raw"], cascade["fed"], list(A_INPUTS)
    url = f"sqlite:///{cascade['root'] / 'registry.db'}"
    gw = start_gateway("--registry-url", url, "--poll-interval", "0.3")
    wait_for(lambda: "b:1" in httpx.get(gw.url + "/readyz").json()["serving"], what="b served")
    ready = httpx.get(gw.url + "/readyz").json()
    assert sorted(ready["serving"]) == ["a:1", "b:1"] and ready["parts"] == []
    assert "c:1" in ready["missing"] and "undeclared composition" in ready["missing"]["c:1"]
    assert "/" not in ready["missing"]["c:1"]  # no file-system paths

    # a consumer of b (not declared for a) sends b's raw columns only and gets a:1's pin in the answer
    b_classes = ModelBundle.load(b1).card.classes
    sha_a1, sha_a2 = ModelBundle.load(a1).onnx_sha256, ModelBundle.load(a2).onnx_sha256
    answer = _call(gw, keys["shop"], "b", frame, raw)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"]["upstream"] == [{"name": "a", "version": 1, "sha256": sha_a1}]
    expected = _expected_b(a1, b1, frame, fed)
    np.testing.assert_allclose(_probabilities(answer.json(), b_classes), expected, atol=2e-6)
    assert _call(gw, keys["shop"], "a", frame, inputs).status_code == 403  # composition is not access to a
    # the caller sends raw columns: the upstream-fed feature is not one of them
    detail = httpx.get(gw.url + "/models/b", headers={"Authorization": f"Bearer {keys['shop']}"}).json()
    assert detail["inputs"]["features"] == raw and detail["model"]["upstream"][0]["version"] == 1

    # a load test of b sends b's raw columns by name, as a consumer does (tests.serving: load payloads)
    target = target_from_bundle(b1)
    assert target.named and target.features == raw
    assert send_load_payloads(gw.url, keys["shop"], target) == []

    # a direct consumer of a is unaffected, and a's own answer is what the composition fed b
    direct = _call(gw, keys["lab"], "a", frame, inputs)
    assert direct.status_code == 200 and direct.json()["model"]["upstream"] == []
    a_classes = ModelBundle.load(a1).card.classes
    np.testing.assert_allclose(
        _probabilities(direct.json(), a_classes), _graph(a1, frame), atol=1e-6
    )

    # a:2 released for direct callers; b keeps a:1 (answer, metrics, /readyz)
    reg.register(a2)
    reg.release("a:2")
    wait_for(lambda: _call(gw, keys["lab"], "a", frame, inputs).json()["model"]["version"] == 2, what="a:2")
    before = httpx.get(gw.url + "/metrics").text
    answer = _call(gw, keys["shop"], "b", frame, raw)
    assert answer.status_code == 200 and answer.json()["model"]["upstream"][0]["version"] == 1
    expected = _expected_b(a1, b1, frame, fed)
    np.testing.assert_allclose(_probabilities(answer.json(), b_classes), expected, atol=2e-6)
    after = httpx.get(gw.url + "/metrics").text
    assert _rows(after, "a", 1, "upstream") - _rows(before, "a", 1, "upstream") == ROWS
    assert _rows(after, "a", 2, "upstream") == 0 and _rows(after, "a", 2, "direct") >= ROWS
    ready = httpx.get(gw.url + "/readyz").json()
    assert sorted(ready["serving"]) == ["a:2", "b:1"] and ready["parts"] == ["a:1"]
    assert _sample(after, "lockgate_model_info", model="a", version=1, sha256=sha_a1, role="pin") == 1

    # 'lockgate registry revalidate b:1 --upstream a:2' re-scores b on a:2 and records the pin (signed
    # evidence, Registry.record_pin): the gateway moves b to a:2 at its next poll
    key = str(write_test_key(cascade["root"]))
    revalidate = ["registry", "revalidate", "b:1", "--upstream", "a:2", "--sign-key", key]
    assert lockgate_main([*revalidate, "--registry-url", url]) == 0
    wait_for(lambda: _pinned(_call(gw, keys["shop"], "b", frame, raw)) == 2, what="b on a:2")
    answer = _call(gw, keys["shop"], "b", frame, raw).json()
    assert answer["model"]["upstream"] == [{"name": "a", "version": 2, "sha256": sha_a2}]
    np.testing.assert_allclose(_probabilities(answer, b_classes), _expected_b(a2, b1, frame, fed), atol=2e-6)
    assert _rows(httpx.get(gw.url + "/metrics").text, "a", 2, "upstream") >= ROWS
    assert httpx.get(gw.url + "/readyz").json()["parts"] == []

    # the v2 endpoint composes too: one tensor per raw column
    v2 = httpx.post(
        gw.url + "/v2/models/b/infer",
        json={"inputs": _v2_tensors(frame, raw)},
        headers={"Authorization": f"Bearer {keys['shop']}"},
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["parameters"]["upstream"] == f"a:2@{sha_a2}"
    got = np.array(v2.json()["outputs"][1]["data"]).reshape(ROWS, -1)
    np.testing.assert_allclose(got, _expected_b(a2, b1, frame, fed), atol=2e-6)

    # the undeclared composition stays refused: c is named in /readyz, a caller gets 404 saying why
    refused = _call(gw, keys["shop"], "c", frame, raw)
    assert refused.status_code == 404 and "undeclared composition" in refused.json()["error"]["message"]


def _pinned(answer: httpx.Response) -> int:
    """The upstream version b's answer says it used."""
    assert answer.status_code == 200, answer.text
    return answer.json()["model"]["upstream"][0]["version"]


def _v2_tensors(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
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
            **{name: 0.0 for name in cascade["raw"] if name not in card.feature_names},  # b's own columns
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
    features = [f for f in b_card.features if f.name != cascade["fed"]] + [label]
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
    x = np.arange(12, dtype=np.float32).reshape(2, 6)  # g1..g4, h1, h2
    asyncio.run(composition.predict(x, np.array([["east"], ["north"]], dtype=object)))
    x_seen, cat_seen = seen[0]
    np.testing.assert_array_equal(x_seen, x)  # the raw numeric columns, untouched
    assert cat_seen.tolist() == [["east", a_card.classes[1]], ["north", a_card.classes[0]]]
    assert counted == [2]

    wrong = up.__class__(b_card.upstream[0], 1, "0" * 64, ["x", "y"], a_columns, upstream, counted.append)
    with pytest.raises(CompositionError, match="probabilities of classes"):
        compose_parts(b_card, TableSchema(raw_card(b_card), 3e38).columns, [wrong], downstream)
    with pytest.raises(CompositionError, match="not among its raw columns"):
        compose_parts(card, [c for c in raw if c.name != "region"], [up], downstream)


def test_a_rollout_of_an_upstream_reaches_direct_callers_only(cascade):
    """A canary (100 %) and then a shadow of another version of a, through the real data plane on the
    registry (in process): a's direct callers get the candidate, b stays composed with its pin on a."""
    reg, keys, frame, raw = cascade["reg"], cascade["keys"], cascade["frame"], cascade["raw"]
    if not any(v.ref.version == 2 for v in reg.versions("a")):
        reg.register(cascade["a2"])  # this test alone; after test_cascade_end_to_end a:2 is released
    live = next(v.ref.version for v in reg.released() if v.ref.name == "a")
    candidate = 3 - live
    pinned = next(p.upstream.version for p in reg.pins("b:1") if p.upstream.name == "a")
    assert pinned == live  # card pin a:1, or the revalidated a:2
    settings = ServeSettings(registry_url=f"sqlite:///{cascade['root'] / 'registry.db'}", poll_interval=0.2)
    body = {
        "a": {"model": "a", "instances": _instances(frame, list(A_INPUTS))},
        "b": {"model": "b", "instances": _instances(frame, raw)},
    }

    async def ask(dp, consumer: str, model: str) -> dict:
        who = await dp.identify(keys[consumer])
        return json.loads(await dp.predict(who, json.dumps(body[model]).encode(), request_id="r-1"))

    async def run() -> None:
        dp = open_dataplane(settings)
        await dp.start()
        try:
            answer_b = await ask(dp, "shop", "b")
            reg.start_rollout(f"a:{candidate}", "canary", "100%", actor="tests")
            dp.reload()
            assert dp.catalog.rollouts["a"].candidate.predictor.version == candidate
            direct = await ask(dp, "lab", "a")
            assert (direct["model"]["version"], direct["model"]["rollout"]) == (candidate, "canary")
            composed = await ask(dp, "shop", "b")
            assert composed["model"]["upstream"][0]["version"] == pinned and composed == answer_b
            reg.start_rollout(f"a:{candidate}", "shadow", actor="tests")
            dp.reload()
            assert (await ask(dp, "lab", "a"))["model"]["version"] == live
            assert await ask(dp, "shop", "b") == answer_b
        finally:
            reg.rollback("a", actor="tests")
            await dp.stop()

    asyncio.run(run())
