"""Production feedback through the real gateway: request ids on every answer, captured rows in the
registry (off the hot path), POST /feedback joined by request id, and a capture store that is down
(predictions still succeed, drops are counted)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.bundles import open_trusting
from tests.serving.conftest import Gateway, free_port


def _wait(predicate, timeout: float = 15.0, what: str = "condition"):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def served(demo_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """demo:1 released for two consumers behind a gateway capturing every request."""
    work = tmp_path_factory.mktemp("capture")
    url = f"sqlite:///{work / 'registry.db'}"
    with open_trusting(url) as reg:
        keys = {}
        for consumer in ("shop", "web"):
            reg.add_consumer(consumer, owner=f"team-{consumer}")
            keys[consumer] = reg.issue_key(consumer)
        reg.register(demo_bundle)
        reg.release("demo:1")
        for consumer in keys:
            reg.declare(consumer, "demo")
    gw = Gateway(["--registry-url", url, "--capture-rate", "1"], log=work / "gateway.log")
    try:
        gw.wait_ready(path="/readyz")
        yield {"gw": gw, "url": url, "keys": keys, "work": work}
    finally:
        gw.stop()


def _post(served: dict, rows: list[list[float]], consumer: str = "shop", **headers: str) -> httpx.Response:
    return httpx.post(
        served["gw"].url + "/predict",
        json={"model": "demo", "inputs": rows},
        headers={"Authorization": f"Bearer {served['keys'][consumer]}", **headers},
    )


def test_every_answer_carries_a_request_id_and_honours_a_safe_x_request_id(served: dict, rows: list) -> None:
    answer = _post(served, rows[:2])
    assert answer.status_code == 200, answer.text
    rid = answer.json()["request_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid) and answer.headers["x-request-id"] == rid
    mine = _post(served, rows[:1], **{"X-Request-Id": "order-42.a_b"})
    assert mine.json()["request_id"] == "order-42.a_b" and mine.headers["x-request-id"] == "order-42.a_b"
    for bad in ("../etc/passwd", "x" * 65, "a b"):
        refused = _post(served, rows[:1], **{"X-Request-Id": bad})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "bad_request_id"
    errored = httpx.post(served["gw"].url + "/predict", json={"model": "demo", "inputs": rows[:1]})
    assert errored.status_code == 401 and re.fullmatch(r"[0-9a-f]{32}", errored.headers["x-request-id"])
    v2 = httpx.post(
        served["gw"].url + "/v2/models/demo/infer",
        json={
            "id": "my-v2",
            "inputs": [{"name": "input", "shape": [1, len(rows[0])], "datatype": "FP64", "data": rows[0]}],
        },
        headers={"Authorization": f"Bearer {served['keys']['shop']}", "X-Request-Id": "v2-req"},
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["id"] == "my-v2" and v2.json()["parameters"]["request_id"] == "v2-req"
    assert v2.headers["x-request-id"] == "v2-req"


def test_answers_are_captured_into_the_registry_without_a_reload(served: dict, rows: list) -> None:
    with open_trusting(served["url"]) as reg:
        generation = reg.generation()
        answer = _post(served, rows[:3], **{"X-Request-Id": "batch-3"}).json()
        got = _wait(lambda: [r for r in reg.captured("demo") if r.request_id == "batch-3"], what="capture")
        assert reg.generation() == generation
    assert [r.row for r in got] == [0, 1, 2]
    first = got[0]
    assert (first.model, first.version, first.consumer, first.role) == ("demo", 1, "shop", "live")
    np.testing.assert_allclose(first.inputs, rows[0], rtol=1e-12)
    assert first.label == answer["predictions"][0]["label"]
    assert first.probabilities == pytest.approx(
        list(answer["predictions"][0]["probabilities"].values()), abs=1e-6
    )
    assert first.latency_ms > 0


def test_feedback_from_declared_consumers_is_joined_by_request_id(served: dict, rows: list) -> None:
    gw, keys = served["gw"], served["keys"]
    answer = _post(served, rows[:2], **{"X-Request-Id": "fb-1"}).json()
    classes = list(answer["predictions"][0]["probabilities"])

    def feedback(body: object, consumer: str | None = "shop") -> httpx.Response:
        headers = {"Authorization": f"Bearer {keys[consumer]}"} if consumer else {}
        return httpx.post(gw.url + "/feedback", json=body, headers=headers)

    assert feedback({"request_id": "fb-1", "label": classes[0]}).json() == {"stored": 1}
    batch = {"labels": [{"request_id": "fb-1", "row": 1, "label": classes[1]}]}
    assert feedback(batch).json() == {"stored": 1}
    assert feedback({"request_id": "fb-1", "row": 1, "label": classes[0]}, consumer="web").status_code == 200
    assert feedback({"request_id": "fb-1", "label": classes[0]}, consumer=None).status_code == 401
    bad = feedback({"request_id": "fb-1", "label": "no-such-class"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_label"
    for body in ({"request_id": "../x", "label": classes[0]}, {"label": classes[0]}, [1], {"labels": []}):
        assert feedback(body).status_code == 422, body
    with open_trusting(served["url"]) as reg:
        joined = _wait(
            lambda: [j for j in reg.labelled("demo") if j.prediction.request_id == "fb-1"] or None,
            what="labelled rows",
        )
    # web's label for shop's request is stored but never joined
    assert [(j.prediction.row, j.truth) for j in joined] == [(0, classes[0]), (1, classes[1])]


def test_a_capture_store_that_is_down_never_fails_a_prediction(
    demo_bundle: Path, tmp_path: Path, rows: list
) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with open_trusting(url) as reg:
        reg.add_consumer("shop", owner="team-shop")
        key = reg.issue_key("shop")
        reg.register(demo_bundle)
        reg.release("demo:1")
        reg.declare("shop", "demo")
    down = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"  # nobody listens there
    gw = Gateway(
        ["--registry-url", url, "--capture-rate", "1", "--capture-registry", down],
        env={"LOCKGATE_SERVE_CAPTURE_ROWS_PER_MINUTE": "5"},
        log=tmp_path / "gateway.log",
    )
    try:
        gw.wait_ready(path="/readyz")
        for row in rows[:8]:
            answer = httpx.post(
                gw.url + "/predict",
                json={"model": "demo", "inputs": [row]},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert answer.status_code == 200, answer.text

        def dropped() -> dict[str, float] | None:
            text = httpx.get(gw.url + "/metrics").text
            found = dict(re.findall(r'lockgate_capture_dropped_total\{reason="(\w+)"\} ([0-9.]+)', text))
            counts = {k: float(v) for k, v in found.items()}
            return counts if counts.get("store_error") == 5 else None

        counts = _wait(dropped, what="5 store errors")
        assert counts["rows_budget"] == 3  # the minute's budget of 5 rows: the other 3 never queued
    finally:
        gw.stop()
    assert re.search(r"capture: \d+ rows dropped, the store failed", (tmp_path / "gateway.log").read_text())


def _send_rows(served: dict, x: np.ndarray, prefix: str, per_request: int = 20) -> list[str]:
    ids = []
    for i in range(0, len(x), per_request):
        rid = f"{prefix}-{i // per_request}"
        answer = _post(served, x[i : i + per_request].tolist(), **{"X-Request-Id": rid})
        assert answer.status_code == 200, answer.text
        ids.append(rid)
    return ids


def _monitor(served: dict, capsys: pytest.CaptureFixture, *args: str) -> dict:
    from training.monitor_cli import main

    capsys.readouterr()
    code = main(["demo", "--registry-url", served["url"], "--json", *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    import json

    return json.loads(out.out)


def _wait_captured(served: dict, since: object, n: int) -> None:
    with open_trusting(served["url"]) as reg:
        _wait(lambda: len(reg.captured("demo", since=since)) >= n, what=f"{n} captured rows")


def _online(served: dict) -> tuple[float, float]:
    """demo's labelled and correctly predicted live rows in the gateway's online-quality counters."""
    text = httpx.get(served["gw"].url + "/metrics").text

    def value(name: str) -> float:
        found = re.search(name + r'_total\{[^}]*model="demo"[^}]*\} ([0-9.e+]+)', text)
        return float(found[1]) if found else 0.0

    return value("lockgate_online_labelled_rows"), value("lockgate_online_correct_rows")


def test_online_quality_of_labelled_live_traffic_matches_the_cards_test_figures(
    served: dict, demo_bundle: Path, capsys: pytest.CaptureFixture
) -> None:
    from datetime import UTC, datetime

    from cascade_registry.artifacts import ModelBundle

    card = ModelBundle.read_card(demo_bundle)
    with np.load(demo_bundle / "reference.npz") as ref:
        x, y = ref["holdout_inputs"].astype(np.float64), ref["holdout_labels"]
    since = datetime.now(UTC).isoformat()
    ids = _send_rows(served, x, "holdout")
    labels = [
        {"request_id": ids[i // 20], "row": i % 20, "label": card.classes[int(label)]}
        for i, label in enumerate(y)
    ]
    _wait_captured(served, datetime.fromisoformat(since), len(y))  # labels after captures: counted live too
    before = _online(served)
    stored = httpx.post(
        served["gw"].url + "/feedback",
        json={"labels": labels},
        headers={"Authorization": f"Bearer {served['keys']['shop']}"},
    )
    assert stored.json() == {"stored": len(y)}
    after = _online(served)
    rows, right = after[0] - before[0], after[1] - before[1]
    assert rows == len(y) and right / rows == pytest.approx(card.metrics.accuracy, abs=1e-9)
    metrics = httpx.get(served["gw"].url + "/metrics").text
    assert len(re.findall(r"lockgate_online_bin_rows_total\{", metrics)) <= 10  # bounded: ten bins
    png = served["work"] / "reliability.png"
    report = _monitor(served, capsys, "--since", since, "--png", str(png))["quality"]
    online = report["overall"][0]
    assert online["rows"] == len(y) == card.metrics.rows
    for key in ("accuracy", "brier", "ece"):  # within two standard errors of the offline test figure
        assert abs(online[key] - getattr(card.metrics, key)) <= online[f"{key}_error"], key
    assert report["within"]["1"] == {"accuracy": True, "brier": True, "ece": True}
    assert [g["consumer"] for g in report["groups"]] == ["shop"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_shifted_stream_marks_the_version_stale_and_an_unshifted_one_does_not(
    served: dict, capsys: pytest.CaptureFixture
) -> None:
    from datetime import UTC, datetime

    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer().data  # the demo's table: fresh rows of the same distribution
    rng = np.random.default_rng(7)
    stream = data[rng.choice(len(data), size=150, replace=False)]
    calm_since = datetime.now(UTC)
    _send_rows(served, stream, "calm")
    _wait_captured(served, calm_since, 150)
    calm = _monitor(served, capsys, "--drift", "--since", calm_since.isoformat())["drift"]
    assert not calm["drifted"] and calm["auc"] < calm["threshold"] == 0.7
    with open_trusting(served["url"]) as reg:
        assert not reg.get("demo:1").stale

    shifted = stream.copy()
    shifted[:, :5] *= 1.6  # injected shift: the first five features 60 % larger
    shift_since = datetime.now(UTC)
    _send_rows(served, shifted, "shifted")
    _wait_captured(served, shift_since, 150)
    drift = _monitor(served, capsys, "--drift", "--since", shift_since.isoformat())["drift"]
    assert drift["drifted"] and drift["auc"] >= 0.7 and drift["rows"] == 150
    names = list(drift["features"])
    worst = sorted(names, key=lambda c: -drift["features"][c]["auc"])[:5]
    assert set(worst) == set(names[:5])  # the shifted features are the most telling ones
    with open_trusting(served["url"]) as reg:
        info = reg.get("demo:1")
        assert info.stale and info.stale_reason.startswith("drift on live traffic")
        assert reg.impact("demo").stale_reasons == {1: info.stale_reason}
        assert [c.stale for c in reg.drift_checks("demo", 1)] == [False, True]
    ready = _wait(
        lambda: httpx.get(served["gw"].url + "/readyz").json()["stale"] or None, what="/readyz stale"
    )
    assert ready["demo:1"].startswith("drift on live traffic")

