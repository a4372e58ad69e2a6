"""The Locust runner against a tiny stdlib server whose every answer is known (see tiny_gateway.py).

Locust monkey-patches the standard library, so the run happens in a subprocess; this test process
only reads what it measured (real Locust stats, turned into Measurements) and judges it.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from loadtests.measurements import Measurements
from loadtests.slo import evaluate, parse_slo

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def tiny_host():
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "tiny_gateway.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def tiny_run(tiny_host, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    out = folder / "measured.json"
    subprocess.run(
        [sys.executable, str(HERE / "tiny_run.py"), tiny_host, str(folder / "reports"), str(out)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    with urllib.request.urlopen(f"{tiny_host}/counts", timeout=5) as resp:
        server = json.loads(resp.read())
    return Measurements.model_validate_json(out.read_text()), server, folder / "reports"


def test_every_request_sent_is_one_the_server_received(tiny_run):
    measured, server, _ = tiny_run
    assert measured.endpoints["all"].requests == sum(server["counts"].values()) > 50
    by_consumer_status = Counter()
    for o in measured.outcomes:
        by_consumer_status[f"{o.consumer} {o.status}"] += o.count
    assert dict(by_consumer_status) == server["counts"]


def test_wrong_answers_are_failures_and_refusals_are_not(tiny_run):
    measured, server, _ = tiny_run
    predict = measured.endpoints["/predict"]
    assert server["sabotaged"] >= 1
    assert predict.failures == server["sabotaged"]
    for name in ("/predict (no key)", "/predict (undeclared)", "/predict (malformed)"):
        assert measured.endpoints[name].requests > 0, name
        assert measured.endpoints[name].failures == 0, name
    statuses = {(o.kind, o.status) for o in measured.outcomes}
    assert statuses <= {
        ("valid", 200),
        ("no_key", 401),
        ("undeclared", 403),
        ("malformed", 415),
        ("malformed", 422),
    }


def test_slo_verdict_on_real_stats_says_which_objective_broke(tiny_run):
    measured, _, _ = tiny_run
    slo = parse_slo(
        """
        [[objectives]]
        metric = "error_ratio"
        endpoint = "/predict"
        max = 0.01
        [[objectives]]
        metric = "p99_ms"
        endpoint = "/predict"
        max = 5000
        [[objectives]]
        metric = "rps"
        endpoint = "all"
        min = 1
        """
    )
    verdict = evaluate(slo, measured)
    assert [r.status for r in verdict.results] == ["fail", "pass", "pass"]
    assert verdict.exit_code == 1
    broken = verdict.results[0]
    assert broken.measured == pytest.approx(0.1, abs=0.02)  # every 10th valid answer was wrong
    table = verdict.table()
    assert "error_ratio /predict" in table and "FAIL" in table and "over" in table


def test_reports_are_written(tiny_run):
    measured, _, reports = tiny_run
    assert (reports / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    with open(reports / "locust_stats.csv", newline="") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    assert int(rows["/predict"]["Request Count"]) == measured.endpoints["/predict"].requests
    assert int(rows["Aggregated"]["Failure Count"]) == measured.endpoints["all"].failures
    assert (reports / "locust_stats_history.csv").stat().st_size > 0
