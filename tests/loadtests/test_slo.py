"""SLO files: parsing, the packaged default, evaluation, and the verdict table."""

from __future__ import annotations

import pytest

from loadtests.errors import SloFileError
from loadtests.measurements import EndpointStats, Measurements, MemorySample
from loadtests.slo import evaluate, load_slo, parse_slo


def _stats(name: str, requests: int, failures: int, p95: float, p99: float, rps: float) -> EndpointStats:
    return EndpointStats(
        name=name,
        requests=requests,
        failures=failures,
        p50_ms=p95 / 2,
        p90_ms=p95 * 0.9,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=p99 * 2,
        avg_ms=p95 / 2,
        rps=rps,
    )


def _measured(memory: list[MemorySample] | None = None) -> Measurements:
    return Measurements(
        duration_s=10.0,
        users=5,
        endpoints={
            "/predict": _stats("/predict", 900, 0, 40.0, 90.0, 90.0),
            "all": _stats("all", 1000, 20, 45.0, 120.0, 100.0),
        },
        memory=memory or [],
    )


def test_default_slo_ships_with_the_package():
    slo = load_slo()
    metrics = {o.metric for o in slo.objectives}
    assert {"p95_ms", "p99_ms", "error_ratio", "rps"} <= metrics


def test_verdict_says_what_broke_and_by_how_much():
    slo = parse_slo(
        """
        [[objectives]]
        metric = "p95_ms"
        endpoint = "/predict"
        max = 50
        [[objectives]]
        metric = "error_ratio"
        max = 0.01
        [[objectives]]
        name = "throughput"
        metric = "rps"
        endpoint = "/predict"
        min = 120
        """
    )
    verdict = evaluate(slo, _measured())
    assert [r.status for r in verdict.results] == ["pass", "fail", "fail"]
    assert verdict.exit_code == 1
    assert verdict.results[1].measured == pytest.approx(0.02)
    assert verdict.results[1].excess == pytest.approx(0.01)
    assert verdict.results[2].excess == pytest.approx(30.0)
    assert verdict.results[2].excess_percent == pytest.approx(25.0)
    table = verdict.table()
    assert "throughput" in table and "30 req/s under (25%)" in table and "10 ms to spare" in table
    assert table.rstrip().endswith("FAIL: 2 objective(s) broken")


def test_all_held_exits_zero():
    slo = parse_slo('[[objectives]]\nmetric = "p99_ms"\nendpoint = "/predict"\nmax = 100\n')
    verdict = evaluate(slo, _measured())
    assert verdict.passed and verdict.exit_code == 0 and "PASS" in verdict.table()


def test_unknown_endpoint_fails_with_the_known_names():
    slo = parse_slo('[[objectives]]\nmetric = "p99_ms"\nendpoint = "/predcit"\nmax = 100\n')
    result = evaluate(slo, _measured()).results[0]
    assert result.status == "fail" and "/predcit" in result.note and "/predict" in result.note


def test_memory_growth_is_skipped_without_samples_and_judged_with_them():
    slo = parse_slo('[[objectives]]\nmetric = "memory_growth_mb"\nmax = 50\n')
    assert evaluate(slo, _measured()).results[0].status == "skip"
    grown = _measured([MemorySample(seconds=0, rss_mb=100), MemorySample(seconds=60, rss_mb=180)])
    result = evaluate(slo, grown).results[0]
    assert (result.status, result.measured, result.excess) == ("fail", 80.0, 30.0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[objectives]\n", "not valid TOML"),
        ("objectives = []\n", "objectives"),
        ('[[objectives]]\nmetric = "p95_ms"\n', "exactly one of 'max' or 'min'"),
        ('[[objectives]]\nmetric = "p95_ms"\nmax = 1\nmin = 0\n', "exactly one"),
        ('[[objectives]]\nmetric = "p42_ms"\nmax = 1\n', "metric"),
        ('[[objectives]]\nmetric = "rps"\nmin = 1\nlimit = 3\n', "limit"),
    ],
)
def test_bad_slo_files_say_what_is_wrong(text, fragment):
    with pytest.raises(SloFileError) as err:
        parse_slo(text, "my.toml")
    assert "my.toml" in str(err.value) and fragment in str(err.value)


def test_missing_slo_file_says_how_to_fix(tmp_path):
    with pytest.raises(SloFileError, match="does not exist.*--slo"):
        load_slo(tmp_path / "nope.toml")
