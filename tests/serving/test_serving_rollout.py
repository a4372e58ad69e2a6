"""Shadow and canary rollouts through one real gateway (registry mode, SQLite): a shadow never changes an
answer and its agreement is what the two ONNX models give offline; a canary at 10 % answers 10 % (within
a 4-sigma binomial bound) of requests with distinct request ids, sticky per id or per consumer; promote
makes the candidate the released version and rollback restores the old one.

(``test_serving_canary.py`` is the older ``lockgate serve --canary BUNDLE`` mode: one bundle from disk.)"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cascade_registry.cli import main as registry_main
from serving.predictor import OnnxPredictor
from tests.bundles import open_trusting
from tests.serving.conftest import Gateway
from training.monitor_cli import main as monitor_main

VOLATILE = re.compile(rb'"(?:request_id|id)":"[^"]*",?')  # the gateway's request id of each answer


@pytest.fixture(scope="module")
def served(tmp_path_factory, demo_bundle: Path, demo_bundle_v2: Path) -> Iterator[dict]:
    """demo:1 released, demo:2 registered, consumers shop and other declared on demo; one gateway."""
    work = tmp_path_factory.mktemp("rollout")
    url = f"sqlite:///{work / 'registry.db'}"
    reg = open_trusting(url)
    one = reg.register(shutil.copytree(demo_bundle, work / "demo-1")).ref
    reg.register(shutil.copytree(demo_bundle_v2, work / "demo-2"))
    reg.release(str(one))
    keys = {}
    for consumer in ("shop", "other"):
        reg.add_consumer(consumer, owner=f"team-{consumer}")
        reg.declare(consumer, "demo")
        keys[consumer] = reg.issue_key(consumer)
    gw = Gateway(
        ["--registry-url", url],
        env={"LOCKGATE_SERVE_POLL_INTERVAL": "0.2", "LOCKGATE_SERVE_CAPTURE_RATE": "1"},
        log=work / "gateway.log",
    )
    try:
        gw.wait_ready(path="/readyz")
        with httpx.Client(base_url=gw.url, timeout=10) as client:
            yield {"gw": gw, "reg": reg, "url": url, "keys": keys, "client": client, "work": work}
    finally:
        gw.stop()
        reg.close()


def _post(s: dict, rows, consumer: str = "shop", request_id: str | None = None, **extra) -> httpx.Response:
    headers = {"Authorization": f"Bearer {s['keys'][consumer]}"}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    return s["client"].post("/predict", json={"model": "demo", "inputs": rows, **extra}, headers=headers)


def _v2(s: dict, rows) -> httpx.Response:
    body = {
        "inputs": [
            {
                "name": "input",
                "shape": [len(rows), len(rows[0])],
                "datatype": "FP32",
                "data": [v for row in rows for v in row],
            }
        ]
    }
    headers = {"Authorization": f"Bearer {s['keys']['shop']}"}
    return s["client"].post("/v2/models/demo/infer", json=body, headers=headers)


def _wait_ready(s: dict, check, what: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = s["client"].get("/readyz").json()
        if check(body):
            return body
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s: {body}")


def _metric(s: dict, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(s["client"].get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def _report(s: dict, capsys) -> dict:
    code = registry_main(["--registry-url", s["url"], "rollout", "demo", "--gateway", s["gw"].url, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_a_shadow_never_changes_an_answer_and_reports_agreement(
    served, rows, demo_bundle, demo_bundle_v2, capsys
):
    s = served
    x = np.load(demo_bundle / "reference.npz")["inputs"][:96].astype(float)
    batches = [x[i : i + 8].tolist() for i in range(0, len(x), 8)]
    requests = [(b, {}) for b in batches] + [(batches[0], {"explain": True})]
    before = [VOLATILE.sub(b"", _post(s, b, **extra).content) for b, extra in requests]
    v2_before = VOLATILE.sub(b"", _v2(s, batches[1]).content)
    probability_rows = _metric(
        s, "lockgate_predicted_probability_count", model="demo", **{"class": "malignant"}
    )

    s["reg"].start_rollout("demo:2", "shadow", actor="tests")
    _wait_ready(s, lambda r: r["rollouts"].get("demo", {}).get("mode") == "shadow", "the shadow")
    after = [VOLATILE.sub(b"", _post(s, b, **extra).content) for b, extra in requests]
    assert after == before  # byte for byte: the candidate's answer is never returned
    assert VOLATILE.sub(b"", _v2(s, batches[1]).content) == v2_before
    assert _post(s, rows[:1], version=2).status_code == 404  # nor can it be asked for

    n = len(x) + 16  # the explained request and the v2 one repeat batches 0 and 1
    deadline = time.monotonic() + 10
    while (
        _metric(s, "lockgate_rollout_compared_rows_total", model="demo") < n and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    live = OnnxPredictor.from_bundle(demo_bundle).predict(x.astype(np.float32))
    cand = OnnxPredictor.from_bundle(demo_bundle_v2).predict(x.astype(np.float32))
    same = int((live[0] == cand[0]).sum()) + int((live[0][:16] == cand[0][:16]).sum())
    dp = np.abs(live[1] - cand[1]).max(axis=1)

    report = _report(s, capsys)
    figures = report["figures"]
    assert (figures["compared_rows"], figures["same_rows"]) == (n, same)
    assert figures["agreement"] == pytest.approx(same / n)
    assert figures["max_abs_dp"] == pytest.approx(float(dp.max()), abs=1e-5)
    assert figures["mean_abs_dp"] == pytest.approx(float(np.concatenate([dp, dp[:16]]).mean()), abs=1e-5)
    roles = {(r["role"], r["version"]): r for r in figures["roles"]}
    assert set(roles) == {("live", 1), ("shadow", 2)}
    assert roles[("live", 1)]["rows"] == roles[("shadow", 2)]["rows"] == n
    assert all(r["latency_mean_ms"] > 0 and r["latency_p95_ms"] > 0 for r in roles.values())
    assert figures["dropped"] == {}
    # the shadow's rows stay out of the served-probability histogram
    grown = _metric(s, "lockgate_predicted_probability_count", model="demo", **{"class": "malignant"})
    assert grown - probability_rows == n
    s["reg"].rollback("demo", actor="tests")
    _wait_ready(s, lambda r: r["rollouts"] == {}, "the end of the shadow")


def test_a_shadows_answers_are_captured_and_monitor_scores_them(served, demo_bundle, demo_bundle_v2, capsys):
    """Shadow answers go to the capture with role 'shadow' under the live request's id; labels sent for the
    live answers score the candidate too: ``lockgate monitor demo --version 2 --role shadow``."""
    s = served
    with np.load(demo_bundle / "reference.npz") as ref:
        x, y = ref["holdout_inputs"][:60].astype(float), ref["holdout_labels"][:60]
    classes = OnnxPredictor.from_bundle(demo_bundle).classes
    s["reg"].start_rollout("demo:2", "shadow", actor="tests")
    _wait_ready(s, lambda r: r["rollouts"].get("demo", {}).get("mode") == "shadow", "the shadow")
    since = datetime.now(UTC)
    ids = [f"sh-{i}" for i in range(3)]
    for i, rid in enumerate(ids):
        assert _post(s, x[i * 20 : (i + 1) * 20].tolist(), request_id=rid).status_code == 200
    deadline = time.monotonic() + 15
    while (
        len(s["reg"].captured("demo", 2, role="shadow", since=since)) < len(y) and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    shadow = s["reg"].captured("demo", 2, role="shadow", since=since)
    live = s["reg"].captured("demo", 1, role="live", since=since)
    assert {r.request_id for r in shadow} == {r.request_id for r in live} == set(ids)
    labels = [{"request_id": ids[i // 20], "row": i % 20, "label": classes[int(c)]} for i, c in enumerate(y)]
    stored = s["client"].post(
        "/feedback", json={"labels": labels}, headers={"Authorization": f"Bearer {s['keys']['shop']}"}
    )
    assert stored.json() == {"stored": len(y)}
    capsys.readouterr()
    code = monitor_main(
        [
            "demo",
            "--registry-url",
            s["url"],
            "--version",
            "2",
            "--role",
            "shadow",
            "--json",
            "--since",
            since.isoformat(),
            "--png",
            str(s["work"] / "shadow.png"),
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    online = json.loads(out.out)["quality"]["overall"][0]
    offline = OnnxPredictor.from_bundle(demo_bundle_v2).predict(x.astype(np.float32))[0]
    assert online["version"] == 2 and online["rows"] == len(y)
    assert online["accuracy"] == pytest.approx(float((offline == y).mean()))  # the candidate's, not live's
    s["reg"].rollback("demo", actor="tests")
    _wait_ready(s, lambda r: r["rollouts"] == {}, "the end of the shadow")


def test_a_canary_serves_its_share_sticky_per_request_id_or_consumer(served, rows):
    s = served
    s["reg"].start_rollout("demo:2", "canary", "10%", actor="tests")
    ready = _wait_ready(s, lambda r: r["rollouts"].get("demo", {}).get("mode") == "canary", "the canary")
    assert ready["rollouts"]["demo"] == {
        "mode": "canary",
        "live": 1,
        "candidate": 2,
        "share": 0.1,
        "sticky": "request_id",
    }
    n, p = 400, 0.1
    versions = {}
    for i in range(n):
        answer = _post(s, rows[:1], request_id=f"req-{i:04d}").json()
        versions[i] = answer["model"]["version"]
        assert ("rollout" in answer["model"]) == (versions[i] == 2)  # a canary answer says so
    k = sum(v == 2 for v in versions.values())
    assert abs(k - n * p) <= 4 * math.sqrt(n * p * (1 - p)), k
    again = {
        i: _post(s, rows[:1], request_id=f"req-{i:04d}").json()["model"]["version"] for i in range(0, n, 8)
    }
    assert again == {i: versions[i] for i in again}  # the same request id, the same version
    assert _post(s, rows[:1], version=2).json()["model"]["version"] == 2  # asked for by its version
    v2 = (
        s["client"]
        .post(
            "/v2/models/demo/versions/2/infer",
            json={
                "inputs": [{"name": "input", "shape": [1, len(rows[0])], "datatype": "FP32", "data": rows[0]}]
            },
            headers={"Authorization": f"Bearer {s['keys']['shop']}"},
        )
        .json()
    )
    assert (v2["model_version"], v2["parameters"]["rollout"]) == ("2", "canary")
    assert _post(s, rows[:1], request_id="x" * 65).status_code == 422

    s["reg"].start_rollout("demo:2", "canary", "50%", sticky="consumer", actor="tests")
    _wait_ready(s, lambda r: r["rollouts"].get("demo", {}).get("sticky") == "consumer", "sticky per consumer")
    for consumer in ("shop", "other"):
        seen = {
            _post(s, rows[:1], consumer, request_id=f"c-{i}").json()["model"]["version"] for i in range(20)
        }
        assert len(seen) == 1, (consumer, seen)  # one consumer, one version, whatever its request ids
    s["reg"].rollback("demo", actor="tests")
    _wait_ready(s, lambda r: r["rollouts"] == {}, "the end of the canary")
    assert {_post(s, rows[:1], request_id=f"req-{i:04d}").json()["model"]["version"] for i in range(40)} == {
        1
    }


def test_promote_makes_the_candidate_live_and_rollback_restores_the_old_one(served, rows):
    s = served
    s["reg"].start_rollout("demo:2", "canary", "1%", actor="tests")
    _wait_ready(s, lambda r: "demo" in r["rollouts"], "the canary")
    s["reg"].promote("demo:2", actor="tests")
    _wait_ready(s, lambda r: r["serving"] == ["demo:2"] and r["rollouts"] == {}, "demo:2 released")
    answer = _post(s, rows[:1]).json()["model"]
    assert answer["version"] == 2 and "rollout" not in answer
    detail = s["client"].get("/models/demo", headers={"Authorization": f"Bearer {s['keys']['shop']}"}).json()
    assert detail["released_at"] == s["reg"].get("demo:2").released_at.isoformat()
    s["reg"].rollback("demo", actor="tests")
    _wait_ready(s, lambda r: r["serving"] == ["demo:1"], "demo:1 released again")
    assert _post(s, rows[:1]).json()["model"]["version"] == 1
