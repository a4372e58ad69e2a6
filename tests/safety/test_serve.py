"""--serve: the real `lockgate serve --canary` on a free port, probed over HTTP, always stopped."""

from __future__ import annotations

import socket

from safety.checks.serve import serve_probes


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def serve_result(report):
    return next(c for c in report.checks if c.name == "serve")


def test_serve_check_passes_on_the_good_bundle_and_stops_the_server(
    good_bundle, good_card, fast_policy, gate
):
    result = serve_result(gate(good_bundle, fast_policy, "serve", serve=True))
    assert result.status == "pass", result
    assert result.value["5xx"] == 0
    assert result.value["requests"] == len(serve_probes(good_card, [[0.0] * len(good_card.features)]))
    for refusal in (
        "empty_batch=422",
        "too_many_features=422",
        "batch_too_big=413",
        "unknown_model=404",
        "not_json=415",
        "nan_literal=422",
    ):
        assert refusal in result.message, result.message
    assert port_is_free(result.value["port"])


def test_serve_check_fails_when_the_server_is_not_ready_in_time(good_bundle, fast_policy, gate):
    policy = fast_policy.with_changes(serve={"startup_seconds": 0.01})
    report = gate(good_bundle, policy, "serve", serve=True)
    result = serve_result(report)
    assert result.status == "fail" and "was not ready within" in result.message and not report.passed
    assert port_is_free(result.value["port"])


def test_serve_not_asked_is_skip(good_bundle, fast_policy, gate):
    assert serve_result(gate(good_bundle, fast_policy, "serve")).status == "skip"
