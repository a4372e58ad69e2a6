"""Reading the gate's verdict: the table fits the terminal, values are never cut, units and limits read
like ``<= 200 MB`` and ``>= 0.6``; a directory that is not a bundle is a usage error (exit 2); ``--json``;
the report files are readable like the rest of the bundle (0644 under umask 022)."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from cascade_registry.artifacts import GATE_FILE, GateReport
from safety import GatePolicy
from safety.cli import main
from safety.report import format_table, write_junit


@pytest.fixture(scope="module")
def report(good_bundle: Path, gate) -> GateReport:
    policy = GatePolicy().with_changes(resources={"batch1_repeats": 20, "max_batch_repeats": 3})
    return gate(good_bundle, policy)


def _numbers(value: object) -> list[str]:
    """Every number of a check's value as the table prints it (4 significant digits)."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []
    return [f"{value:.4g}" if isinstance(value, float) else str(value)]


@pytest.mark.parametrize("width", [80, 100, 160])
def test_the_table_fits_the_width_and_cuts_no_value(report: GateReport, width: int) -> None:
    table = format_table(report, width=width)
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= width, "\n".join(line for line in lines if len(line) > width)
    assert "…" not in table
    words = set(re.split(r"[\s,\[\]]+", table))
    for check in report.checks:
        for number in _numbers(check.value):
            assert number in words, f"{check.name}: {number} is not printed whole"


def test_units_and_limits_read_plainly(report: GateReport) -> None:
    table = format_table(report, width=120)
    by_check = {}
    current = ""
    for line in table.splitlines()[2:]:
        current = line.split()[0] if line and not line.startswith(" ") else current
        by_check.setdefault(current, []).append(line)
    size = " ".join(by_check["file.size"])
    assert re.search(r"\d MB\s+<= 200 MB", size)
    resources = " ".join(by_check["resources"])
    assert re.search(r"p99_ms_batch1 [\d.e-]+ ms\s+<= 50 ms", resources)
    quality = " ".join(by_check["quality"])
    assert ">= 0.6" in quality and "<= 0.15" in quality and "=>=" not in table and "=<=" not in table
    assert re.search(r"load\s+PASS\s+seconds [\d.]+ s\s+<= 10 s", table)


def test_the_terminal_width_is_used(report: GateReport, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "90")
    assert max(len(line) for line in format_table(report).splitlines()) <= 90


def test_a_directory_that_is_not_a_bundle_is_a_usage_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} is not a bundle: it has no model.onnx and no card.json" in err
    assert err.count("\n") == 1 and not (tmp_path / GATE_FILE).exists()


def test_json_prints_the_report(good_bundle: Path, tmp_path: Path, capsys) -> None:
    policy = tmp_path / "fast.toml"
    policy.write_text("[resources]\nbatch1_repeats = 20\nmax_batch_repeats = 3\n")
    assert main([str(good_bundle), "--policy", str(policy), "--no-write", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is True and {c["name"] for c in data["checks"]} >= {"file.size", "quality"}


def test_report_files_are_readable_like_the_rest(report: GateReport, good_bundle: Path, tmp_path: Path):
    old = os.umask(0o022)
    try:
        write_junit(report, tmp_path / "gate.xml")
        assert main([str(good_bundle), "--quiet"]) in (0, 1)
    finally:
        os.umask(old)
    for path in (tmp_path / "gate.xml", good_bundle / GATE_FILE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
