"""Traffic plans, payload pools, answer judging and settings: the parts that import no Locust."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from loadtests.answers import judge_answer
from loadtests.measurements import OutcomeCount
from loadtests.plan import ConsumerTraffic, ModelTarget, TrafficPlan, build_pool
from loadtests.prometheus import collapse_unattributed, compare_counts, expected_counts, latency_agrees
from loadtests.settings import LoadtestSettings, parse_duration

TARGET = ModelTarget(
    name="demo",
    features=["a", "b"],
    classes=["no", "yes"],
    max_batch=64,
    rows=[[float(i), -float(i)] for i in range(10)],
)


def _plan(**kw) -> TrafficPlan:
    return TrafficPlan(
        models={"demo": TARGET},
        consumers=[ConsumerTraffic(name="app", key="k1", models=["demo"])],
        **kw,
    )


def test_pool_is_seeded_and_spans_batch_sizes():
    a, b = build_pool(_plan(seed=3)), build_pool(_plan(seed=3))
    assert a == b
    sizes = [p.rows for p in a.valid["demo"]]
    assert min(sizes) == 1 and max(sizes) == 64 and len(set(sizes)) > 5
    body = json.loads(a.valid["demo"][0].body)
    assert body["model"] == "demo" and len(body["inputs"]) == 1 and body["inputs"][0] in TARGET.rows
    assert build_pool(_plan(seed=4)) != a


def test_plan_refuses_inconsistent_input():
    with pytest.raises(ValidationError, match="unknown model"):
        TrafficPlan(models={"demo": TARGET}, consumers=[ConsumerTraffic(name="x", key="k", models=["other"])])
    with pytest.raises(ValidationError, match="positive weight"):
        TrafficPlan(models={"demo": TARGET}, consumers=[ConsumerTraffic(name="x", key="k", models=[])])
    with pytest.raises(ValidationError, match="whitespace"):
        ConsumerTraffic(name="x", key="k 1", models=[])
    assert _plan().refused_kinds == ["no_key", "malformed"]
    assert "undeclared" in _plan(undeclared=[("app", "demo")]).refused_kinds


def _ok(probs=(0.25, 0.75), rows=1, **meta):
    body = {
        "model": {"name": "demo", "version": 1, "sha256": "ab" * 32, **meta},
        "predictions": [{"label": "yes", "probabilities": {"no": probs[0], "yes": probs[1]}}] * rows,
    }
    return json.dumps(body).encode()


def test_good_answers_pass():
    assert judge_answer("valid", 200, _ok(rows=3), TARGET, 3) is None
    err = json.dumps({"error": {"code": "unauthorized", "message": "no key", "fix": "send one"}}).encode()
    assert judge_answer("no_key", 401, err, TARGET, 1) is None
    assert judge_answer("malformed", 422, err, TARGET, 1) is None


@pytest.mark.parametrize(
    ("kind", "status", "content", "rows", "fragment"),
    [
        ("valid", 500, b"{}", 1, "expected HTTP 200, got 500"),
        ("no_key", 200, _ok(), 1, "expected HTTP 401, got 200"),
        ("undeclared", 401, b"{}", 1, "expected HTTP 403"),
        ("valid", 0, None, 1, "got no answer"),
        ("valid", 200, b"<html>", 1, "not JSON"),
        ("valid", 200, _ok(probs=(0.5, 0.7)), 1, "sum to 1.2000"),
        ("valid", 200, _ok(probs=(-0.1, 1.1)), 1, "outside [0, 1]"),
        ("valid", 200, _ok(rows=2), 3, "2 predictions for 3 rows"),
        ("valid", 200, _ok(name="other"), 1, "answered by model 'other'"),
        ("valid", 200, _ok(sha256=""), 1, "lacks 'sha256'"),
        ("valid", 200, json.dumps({"predictions": []}).encode(), 1, "no 'model' metadata"),
        ("malformed", 422, b'{"detail": "bad"}', 1, "error body is not"),
    ],
)
def test_wrong_answers_are_named(kind, status, content, rows, fragment):
    problem = judge_answer(kind, status, content, TARGET, rows)
    assert problem is not None and fragment in problem


def test_settings_parse_durations_and_need_a_traffic_source(tmp_path):
    assert parse_duration("1h30m") == 5400 and parse_duration("90") == 90 and parse_duration("2m") == 120
    with pytest.raises(ValueError, match="not like"):
        parse_duration("soon")
    s = LoadtestSettings(traffic=tmp_path / "t.toml", duration="30s", host="http://127.0.0.1:3000/")
    assert s.duration == 30.0 and s.host == "http://127.0.0.1:3000"
    with pytest.raises(ValidationError, match="no traffic source"):
        LoadtestSettings()
    with pytest.raises(ValidationError, match="base URL"):
        LoadtestSettings(traffic=tmp_path / "t.toml", host="127.0.0.1:3000")


def test_prometheus_count_comparison_and_latency_agreement():
    sent = expected_counts(
        [
            OutcomeCount(consumer="app", model="demo", kind="valid", status=200, expected=True, count=90),
            OutcomeCount(consumer="-", model="demo", kind="no_key", status=401, expected=True, count=7),
            OutcomeCount(consumer="app", model="demo", kind="malformed", status=415, expected=True, count=2),
        ]
    )
    assert sent == {("app", "ok"): 90, ("-", "unauthorized"): 7, ("*", "bad_media_type"): 2}
    before = {("app", "ok"): 3.0}
    after = collapse_unattributed(
        {("app", "ok"): 93.0, ("-", "unauthorized"): 7.0, ("-", "bad_media_type"): 2.0}
    )
    assert compare_counts(sent, before, after) == []
    after[("app", "ok")] = 92.0
    assert compare_counts(sent, before, after) == ["consumer=app outcome=ok: Prometheus +89, Locust 90"]
    assert latency_agrees(0.045, 48.0) and latency_agrees(0.03, 60.0) and latency_agrees(0.0012, 6.0)
    assert not latency_agrees(0.004, 400.0)  # the client saw far more than the gateway's own time
    assert not latency_agrees(0.3, 100.0)  # the client cannot be faster than the gateway
