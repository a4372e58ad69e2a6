"""``lockgate serve --workers 2``: two worker processes on one port, one SQLite registry.

Both workers answer (``/readyz`` names the worker), ``/metrics`` read from either worker counts every
request of both exactly once, a revoked key is refused by every worker within the bound the
single-worker gateway keeps (each worker polls the registry and drops its own access cache), and a canary
rollout reaches both workers, which route each request id to the same version.
One server for the module; requests go out on fresh connections from several threads at once so the
kernel hands them to both workers.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.bundles import open_trusting
from tests.serving.conftest import Gateway

FRESH = 16  # requests per burst, each on its own connection, 8 at a time


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, demo_bundle: Path):
    tmp = tmp_path_factory.mktemp("workers")
    url = f"sqlite:///{tmp / 'registry.db'}"
    reg = open_trusting(url)
    reg.register(shutil.copytree(demo_bundle, tmp / "demo-1"))
    reg.release("demo:1")
    reg.add_consumer("billing", owner="team-billing")
    reg.declare("billing", "demo")
    gw = Gateway(["--registry-url", url, "--workers", "2"], log=tmp / "gateway.log")
    try:
        gw.wait_ready(path="/readyz", timeout=90)
        yield gw, reg
    finally:
        gw.stop()
        reg.close()


def burst(fn, n: int = FRESH) -> list:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: fn(), range(n)))


def readyz_worker(gw: Gateway) -> int:
    r = httpx.get(gw.url + "/readyz", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["worker"]


def predict_status(gw: Gateway, key: str, rows: list) -> int:
    r = httpx.post(
        gw.url + "/predict",
        json={"model": "demo", "inputs": rows},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    return r.status_code


def counter(text: str, name: str, **labels: str) -> float:
    """Sum of one family's samples whose labels include ``labels`` (0 when there is none)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        series, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


def both_workers_seen(gw: Gateway, tries: int = 10) -> set[int]:
    seen: set[int] = set()
    for _ in range(tries):
        seen |= set(burst(lambda: readyz_worker(gw)))
        if len(seen) == 2:
            break
    return seen


def test_both_workers_answer_on_one_port(two_workers):
    gw, _ = two_workers
    assert both_workers_seen(gw) == {1, 2}


def test_metrics_from_any_worker_count_every_request_once(two_workers, rows):
    gw, reg = two_workers
    key = reg.issue_key("billing")
    assert both_workers_seen(gw) == {1, 2}  # the bursts below reach both
    before = [httpx.get(gw.url + "/metrics", timeout=10).text for _ in range(4)]
    base = counter(before[0], "lockgate_requests_total", model="demo", outcome="ok")
    probabilities = counter(before[0], "lockgate_predicted_probability_count", model="demo")
    assert {counter(t, "lockgate_requests_total", model="demo", outcome="ok") for t in before} == {base}

    statuses = burst(lambda: predict_status(gw, key, rows[:3]), 40)
    assert statuses == [200] * 40
    # every scrape, whichever worker answers it, sums both workers' files: 40 more, never 80 or 20
    after = burst(lambda: httpx.get(gw.url + "/metrics", timeout=10).text, 8)
    for text in after:
        assert counter(text, "lockgate_requests_total", model="demo", outcome="ok") == base + 40
        # 3 rows x 2 classes per request in the probability histogram, summed over the workers too
        assert counter(text, "lockgate_predicted_probability_count", model="demo") == probabilities + 240
        assert 'lockgate_model_info{' in text


def test_a_revoked_key_is_refused_by_every_worker_within_the_bound(two_workers, rows):
    gw, reg = two_workers
    key = reg.issue_key("billing")
    # warm both workers' access caches with the key's "allowed" decision
    for _ in range(3):
        assert burst(lambda: predict_status(gw, key, rows[:1])) == [200] * FRESH
    reg.revoke_key("billing")
    start = time.monotonic()
    took = 0.0  # from the revocation to the start of the first burst that every worker refused
    while took < 15:
        if burst(lambda: predict_status(gw, key, rows[:1])) == [401] * FRESH:
            break
        time.sleep(0.1)
        took = time.monotonic() - start
    # the single-worker bound (tests/serving/test_serving_replicas.py): registry poll + cache settle
    assert took < 8, f"not every worker refused the revoked key after {took:.1f}s"
    for _ in range(3):  # and it stays refused everywhere (no worker with a stale cache left)
        assert burst(lambda: predict_status(gw, key, rows[:1])) == [401] * FRESH
    assert both_workers_seen(gw) == {1, 2}


def test_a_canary_reaches_both_workers_and_each_routes_a_request_id_alike(two_workers, rows, demo_bundle_v2,
                                                                          tmp_path):
    gw, reg = two_workers
    reg.register(shutil.copytree(demo_bundle_v2, tmp_path / "demo-2"))
    reg.add_consumer("rollout-client", owner="tests")
    reg.declare("rollout-client", "demo")
    key = reg.issue_key("rollout-client")

    def rollouts() -> set[tuple[int, str]]:
        """(worker, rollout mode of demo) from one burst of /readyz on fresh connections."""
        answers = burst(lambda: httpx.get(gw.url + "/readyz", timeout=10).json())
        return {(a["worker"], a["rollouts"].get("demo", {}).get("mode", "-")) for a in answers}

    def version(request_id: str) -> int:
        r = httpx.post(gw.url + "/predict", json={"model": "demo", "inputs": rows[:1]}, timeout=10,
                       headers={"Authorization": f"Bearer {key}", "X-Request-Id": request_id})
        assert r.status_code == 200, r.text
        return r.json()["model"]["version"]

    def wait_for(mode: str) -> None:
        deadline = time.monotonic() + 20
        while rollouts() != {(1, mode), (2, mode)}:
            assert time.monotonic() < deadline, f"not every worker shows rollout {mode!r}: {rollouts()}"
            time.sleep(0.2)

    reg.start_rollout("demo:2", "canary", "30%", actor="tests")
    try:
        wait_for("canary")
        ids = [f"w-{i:03d}" for i in range(60)]
        chosen = {}
        for rid in ids:  # four asks per id, fresh connections from 8 threads: both workers answer
            seen = set(burst(lambda rid=rid: version(rid), 4))
            assert len(seen) == 1, (rid, seen)  # the same id, the same version, whichever worker
            chosen[rid] = seen.pop()
        k = sum(v == 2 for v in chosen.values())
        assert abs(k - 18) <= 4 * (60 * 0.3 * 0.7) ** 0.5, k  # 30 % of 60 within 4 sigma
    finally:
        reg.rollback("demo", actor="tests")
    wait_for("-")
    assert set(burst(lambda: version("w-after"), 8)) == {1}
