"""The gateway in registry mode (a real SQLite registry file): keys, declarations, releases, hot swap."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from serving.metrics import consumer_digest
from tests.bundles import open_trusting


def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s")


def predict(gw, rows, key: str | None = None, **extra) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(
        gw.url + "/predict", json={"model": "demo", "inputs": rows, **extra}, headers=headers, timeout=10
    )


@pytest.fixture
def registry(tmp_path: Path, demo_bundle: Path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    reg = open_trusting(url)
    bundle = shutil.copytree(demo_bundle, tmp_path / "bundles" / "demo-1")
    reg.register(bundle)
    reg.release("demo:1")
    reg.add_consumer("billing", owner="team-billing")
    reg.add_consumer("intruder", owner="someone")
    reg.declare("billing", "demo")
    keys = {"billing": reg.issue_key("billing"), "intruder": reg.issue_key("intruder")}
    try:
        yield url, reg, keys
    finally:
        reg.close()


def test_keys_declarations_and_revocations_take_effect_live(registry, start_gateway, rows, tmp_path):
    url, reg, keys = registry
    # a registry path relative to where 'lockgate serve' runs (the BentoML worker runs elsewhere)
    gw = start_gateway("--registry-url", "sqlite:///registry.db", ready_path="/readyz", cwd=tmp_path)

    missing = predict(gw, rows)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_key"
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    unknown = predict(gw, rows, key="lg_not_a_real_key")
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "unknown_key"
    refused = predict(gw, rows, key=keys["intruder"])
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert "demo" in error["message"] and "lockgate registry declare intruder demo" in error["fix"]

    ok = predict(gw, rows, key=keys["billing"])
    assert ok.status_code == 200, ok.text
    answer = ok.json()
    assert "canary" not in answer
    detail = httpx.get(gw.url + "/models/demo", headers={"Authorization": f"Bearer {keys['billing']}"})
    assert detail.json()["released_at"] == reg.get("demo:1").released_at.isoformat()
    assert len(answer["predictions"]) == len(rows)

    v2 = {"inputs": [{"name": "input", "shape": [1, len(rows[0])], "datatype": "FP32", "data": rows[0]}]}
    v2_refused = httpx.post(gw.url + "/v2/models/demo/infer", json=v2)
    assert v2_refused.status_code == 401 and "Authorization" in v2_refused.json()["error"]
    v2_ok = httpx.post(
        gw.url + "/v2/models/demo/infer", json=v2, headers={"Authorization": f"Bearer {keys['billing']}"}
    )
    assert v2_ok.status_code == 200 and v2_ok.json()["outputs"][1]["shape"] == [1, 2]

    reg.declare("intruder", "demo")  # declared once, enforced within seconds, no restart
    wait_for(lambda: predict(gw, rows[:1], key=keys["intruder"]).status_code == 200, what="declaration")
    reg.revoke_key("billing")
    wait_for(lambda: predict(gw, rows[:1], key=keys["billing"]).status_code == 401, what="revocation")
    assert predict(gw, rows[:1], key=keys["billing"]).json()["error"]["code"] == "revoked_key"

    metrics = httpx.get(gw.url + "/metrics").text
    for reason in ("missing_key", "unknown_key", "revoked_key"):  # refused before any model is named
        assert f'lockgate_refusals_total{{model="-",reason="{reason}"}}' in metrics, reason
    assert 'lockgate_refusals_total{model="demo",reason="undeclared"}' in metrics
    # /metrics needs no key: consumers appear as a digest of their name, never by name
    assert f'consumer="{consumer_digest("billing")}"' in metrics and "billing" not in metrics
    assert "lg_not_a_real_key" not in metrics and "_created" not in metrics


def test_new_release_is_swapped_in_without_a_failed_request(
    registry, start_gateway, demo_bundle_v2, rows, tmp_path
):
    url, reg, keys = registry
    gw = start_gateway("--registry-url", url, ready_path="/readyz")
    reg.register(shutil.copytree(demo_bundle_v2, tmp_path / "bundles" / "demo-2"))

    stop = threading.Event()
    statuses: Counter = Counter()
    versions: Counter = Counter()
    lock = threading.Lock()

    def hammer() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {keys['billing']}"}, timeout=10) as client:
            while not stop.is_set():
                try:
                    r = client.post(gw.url + "/predict", json={"model": "demo", "inputs": rows[:2]})
                    version = r.json()["model"]["version"] if r.status_code == 200 else None
                    with lock:
                        statuses[r.status_code] += 1
                        versions[version] += 1
                except httpx.HTTPError as e:
                    with lock:
                        statuses[type(e).__name__] += 1

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: versions[1] >= 50, what="traffic on version 1")
        reg.release("demo:2")
        wait_for(lambda: versions[2] >= 50, timeout=15, what="traffic on version 2")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert set(statuses) == {200}, statuses  # zero failed requests across the swap
    assert versions[1] >= 50 and versions[2] >= 50
    assert predict(gw, rows[:1], key=keys["billing"], version=1).status_code == 404
    ready = httpx.get(gw.url + "/readyz").json()
    assert ready["serving"] == ["demo:2"] and ready["missing"] == {}
    auth = {"Authorization": f"Bearer {keys['billing']}"}
    versions = httpx.get(gw.url + "/models/demo", headers=auth).json()["versions"]
    assert [(v["version"], v["status"]) for v in versions] == [(1, "superseded"), (2, "released")]


def test_only_bundles_with_a_bound_passing_gate_are_served(
    registry, start_gateway, demo_bundle_v2, gate_writer, tmp_path
):
    url, reg, keys = registry
    other = shutil.copytree(demo_bundle_v2, tmp_path / "bundles" / "other-1")
    card = json.loads((other / "card.json").read_text())
    card["ref"] = {"name": "other", "version": 1}
    (other / "card.json").write_text(json.dumps(card))
    gate_writer(other)
    reg.register(other)
    reg.release("other:1")
    gate_writer(other, sha256="0" * 64)  # the report no longer matches the model file on disk

    gw = start_gateway("--registry-url", url)
    wait_for(lambda: httpx.get(gw.url + "/readyz").json()["serving"] == ["demo:1"], what="startup")
    ready = httpx.get(gw.url + "/readyz")
    assert ready.status_code == 503
    assert list(ready.json()["missing"]) == ["other:1"]
    assert "different model.onnx" in ready.json()["missing"]["other:1"]
    assert str(tmp_path) not in ready.text  # no file-system path in any answer
    reg.declare("billing", "other")
    r = httpx.post(
        gw.url + "/predict",
        json={"model": "other", "inputs": [[0.0]]},
        headers={"Authorization": f"Bearer {keys['billing']}"},
    )
    assert r.status_code == 404 and "released but not loaded" in r.json()["error"]["message"]
    assert "did not pass" in gw.tail() or "different model.onnx" in gw.tail()  # the skip is logged
