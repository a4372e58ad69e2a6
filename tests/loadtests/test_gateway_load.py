"""End to end: the real gateway (``lockgate serve``) under a real Locust load, scraped by a real Prometheus.

A fresh SQLite registry holds a trained (training.train), gated (safety.run_gate) and released bundle,
two declared consumers with keys, and one consumer declared for nothing (the 403 traffic). The load
test runs through the CLI (``python -m lockgate.cli loadtest``) in its own process; Prometheus scrapes
127.0.0.1:<gateway>/metrics every second. Afterwards the request counters per consumer and outcome
must equal what Locust sent (the gateway runs two workers: each request is counted once, in one of them),
the gateway's p99 must agree with Locust's, and ``promtool check metrics`` must accept /metrics.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from loadtests.measurements import Measurements
from loadtests.prometheus import (
    PrometheusServer,
    check_metrics_text,
    collapse_unattributed,
    compare_counts,
    expected_counts,
    latency_agrees,
    outcome_counts,
    settled_outcome_counts,
)
from loadtests.slo import evaluate, parse_slo
from tests.bundles import open_trusting

ROOT = Path(__file__).resolve().parents[2]
DURATION_S = 10


def _ensure_prometheus() -> None:
    """The test set-up installs Debian's prometheus package when the binaries are missing."""
    if shutil.which("prometheus") and shutil.which("promtool"):
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail("prometheus/promtool missing and cannot be installed: apt-get install -y prometheus")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"],
        check=True,
        env=env,
        capture_output=True,
        timeout=900,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory, demo_bundle):
    """A released demo model, consumers with keys, and the traffic file naming them."""
    tmp = tmp_path_factory.mktemp("loadworld")
    bundle = demo_bundle
    url = f"sqlite:///{tmp / 'registry.db'}"
    with open_trusting(url) as reg:
        reg.register(bundle, actor="test")
        reg.release("demo:1", actor="test")
        keys = {}
        for name in ("web", "batch", "intruder"):
            reg.add_consumer(name, kind="service", owner="tests", actor="test")
            keys[name] = reg.issue_key(name, actor="test")
        reg.declare("web", "demo", actor="test")
        reg.declare("batch", "demo", actor="test")
    traffic = tmp / "traffic.toml"
    traffic.write_text(
        f'[consumers.web]\nkey = "{keys["web"]}"\nweight = 3\n\n'
        f'[consumers.batch]\nkey = "{keys["batch"]}"\nweight = 1\n\n'
        f'[consumers.intruder]\nkey = "{keys["intruder"]}"\nweight = 0\n',
        encoding="utf-8",
    )
    return {"tmp": tmp, "url": url, "traffic": traffic}


@pytest.fixture(scope="module")
def gateway(world):
    port = _free_port()
    log = open(world["tmp"] / "gateway.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        # two workers: the counts below must be each request once, summed over both workers' files
        [
            *(sys.executable, "-m", "lockgate.cli", "serve", "--registry-url", world["url"]),
            *("--port", str(port), "--workers", "2"),
        ],
        cwd=ROOT,
        env={**os.environ, "LOCKGATE_SERVE_METRICS_CONSUMER_NAMES": "true"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    host = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gateway exited: {(world['tmp'] / 'gateway.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{host}/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gateway not ready: {(world['tmp'] / 'gateway.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield {"host": host, "port": port, "pid": proc.pid}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        log.close()


SLO = """
[[objectives]]
metric = "error_ratio"
endpoint = "all"
max = 0
[[objectives]]
metric = "p99_ms"
endpoint = "/predict"
max = 5000
[[objectives]]
metric = "requests"
endpoint = "/predict (undeclared)"
min = 1
[[objectives]]
metric = "rps"
endpoint = "/predict"
min = 2
"""


def _direct_counts(host: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{host}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "lockgate_requests":
            for smp in fam.samples:
                if smp.name.endswith("_total"):
                    key = (smp.labels["consumer"], smp.labels["outcome"])
                    out[key] = out.get(key, 0) + smp.value
    return out


@pytest.fixture(scope="module")
def load_run(world, gateway):
    _ensure_prometheus()
    slo = world["tmp"] / "slo.toml"
    slo.write_text(SLO, encoding="utf-8")
    reports = world["tmp"] / "reports"
    with PrometheusServer(gateway["port"], scrape_interval=1.0) as prom:
        before_at = prom.wait_for_scrape(after=time.time())
        before = outcome_counts(prom, before_at)
        started = time.time()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "lockgate.cli",
                "loadtest",
                "--host",
                gateway["host"],
                "--traffic",
                str(world["traffic"]),
                "--registry-url",
                world["url"],
                "--slo",
                str(slo),
                "--users",
                "6",
                "--spawn-rate",
                "6",
                "--duration",
                f"{DURATION_S}s",
                "--max-batch",
                "32",
                "--refused-share",
                "0.2",
                "--report-dir",
                str(reports),
                "--seed",
                "7",
                "--json",
                "--json-out",
                str(world["tmp"] / "result.json"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        direct = _direct_counts(gateway["host"])
        exited = time.time()
        after_at, after = settled_outcome_counts(prom, after=exited)
        window = max(int(after_at - started) + 2, 5)
        p99 = prom.query(
            "histogram_quantile(0.99, sum by (le) "
            f'(increase(lockgate_request_latency_seconds_bucket{{model="demo"}}[{window}s])))',
            at=after_at,
        )
    with urllib.request.urlopen(f"{gateway['host']}/metrics", timeout=10) as resp:
        metrics_text = resp.read().decode()
    measured = Measurements.model_validate_json((reports / "measurements.json").read_text())
    return {
        "proc": proc,
        "measured": measured,
        "before": before,
        "after": after,
        "p99": p99,
        "metrics": metrics_text,
        "reports": reports,
        "direct": direct,
        "exited": exited,
        "after_at": after_at,
    }


def test_load_run_meets_its_objectives(load_run):
    proc, measured = load_run["proc"], load_run["measured"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # --json: stdout is the result and nothing else; --json-out wrote the same; the tables are in files
    result = json.loads(proc.stdout)
    assert result["mode"] == "run" and result["passed"] is True and result["exit_code"] == 0
    assert result["measurements"] == json.loads(measured.model_dump_json())
    assert json.loads((load_run["reports"].parent / "result.json").read_text()) == result
    assert "PASS: all objectives held" in (load_run["reports"] / "verdict.txt").read_text()
    names = set(measured.endpoints)
    assert {"/predict", "/predict (no key)", "/predict (undeclared)", "/predict (malformed)", "all"} <= names
    assert measured.endpoints["/predict"].requests > 50
    assert measured.endpoints["all"].failures == 0
    consumers = {o.consumer for o in measured.outcomes if o.kind == "valid"}
    assert consumers == {"web", "batch"}
    assert {o.consumer for o in measured.outcomes if o.kind == "undeclared"} == {"intruder"}
    verdict = json.loads((load_run["reports"] / "verdict.json").read_text())
    assert all(r["status"] == "pass" for r in verdict["results"])
    assert (load_run["reports"] / "report.html").stat().st_size > 10_000


def test_a_too_strict_objective_fails_with_the_excess(load_run):
    measured = load_run["measured"]
    slo = parse_slo('[[objectives]]\nmetric = "p95_ms"\nendpoint = "/predict"\nmax = 0.001\n')
    verdict = evaluate(slo, measured)
    assert verdict.exit_code == 1
    assert verdict.results[0].excess == pytest.approx(measured.endpoints["/predict"].p95_ms - 0.001)


def test_prometheus_counts_match_what_locust_sent(load_run):
    measured = load_run["measured"]
    sent = expected_counts(measured.outcomes + measured.preflight)
    problems = compare_counts(
        sent, collapse_unattributed(load_run["before"]), collapse_unattributed(load_run["after"])
    )
    # the gateway's own /metrics, read right after the run, agrees too (no Prometheus in between)
    base = collapse_unattributed(load_run["before"])
    assert compare_counts(sent, base, collapse_unattributed(load_run["direct"])) == []
    detail = f"exited={load_run['exited']} after_at={load_run['after_at']}\n"
    detail += f"before={load_run['before']}\nafter={load_run['after']}\nsent={sent}"
    assert problems == [], "\n".join(problems) + "\n" + detail
    # both consumers sent valid traffic; their weights (3:1) set Locust's user counts, not request shares:
    # closed-loop users with no think time each send as fast as the gateway answers them, so a share of
    # requests per consumer is not a property of the gateway (it came out 2820:3440 once on a loaded CI)
    assert sent[("web", "ok")] > 0 and sent[("batch", "ok")] > 0
    assert sent[("-", "unauthorized")] > 0 and sent[("*", "forbidden")] > 0


def test_gateway_p99_agrees_with_locust(load_run):
    assert load_run["p99"], "no latency histogram for model demo"
    prom_p99 = float(load_run["p99"][0]["value"][1])
    locust_p99 = load_run["measured"].endpoints["/predict"].p99_ms  # the histogram times 200s only
    print(f"p99: gateway histogram {prom_p99 * 1000:.1f} ms, Locust {locust_p99:.1f} ms")
    assert latency_agrees(prom_p99, locust_p99), (prom_p99, locust_p99)


def test_promtool_accepts_the_metrics_page(load_run):
    assert "lockgate_requests_total" in load_run["metrics"]
    assert check_metrics_text(load_run["metrics"]) == []
