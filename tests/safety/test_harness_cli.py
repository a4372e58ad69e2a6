"""The harness contains failures of checks; the CLI's exit codes, table, gate.json and JUnit XML."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from cascade_registry.artifacts import CheckResult, ModelBundle
from safety import GateContext, GatePolicy, PolicyError, default_checks, load_policy, run_checks, run_gate
from safety.checks import outcome
from safety.cli import main
from safety.errors import GateUsageError, SandboxError
from safety.policy import default_policy_text
from safety.sandbox import run_job
from tests.bundles import read_gate


class ExplodingCheck:
    """A check (our own protocol) whose run raises: the harness must record error, never pass."""

    name = "explodes"
    requires: tuple[str, ...] = ()
    description = "raises"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        raise ZeroDivisionError("boom")


class SlowCheck:
    name = "slow"
    requires: tuple[str, ...] = ()
    description = "uses the whole budget"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        ctx.deadline = ctx.started  # the budget is gone from here on
        return outcome(self, "pass")


def test_exception_in_a_check_is_error_not_pass(good_bundle: Path, tmp_path: Path):
    report = run_gate(good_bundle, GatePolicy(), checks=[ExplodingCheck()], write=False)
    (result,) = report.checks
    assert result.status == "error" and "ZeroDivisionError: boom" in result.message
    assert not report.passed


def test_budget_exhaustion_fails_the_rest(good_bundle: Path):
    checks = [SlowCheck(), *default_checks()[:2]]
    report = run_gate(good_bundle, GatePolicy(), checks=checks, write=False)
    assert [c.status for c in report.checks] == ["pass", "fail", "fail"]
    assert "time budget" in report.checks[1].message and not report.passed


def test_prerequisite_failure_skips_dependents(tmp_path: Path):
    ctx = GateContext(tmp_path, GatePolicy())  # an empty directory: no model, no card
    results = {r.name: r for r in run_checks(ctx, default_checks())}
    assert results["file.size"].status == "fail" and results["card.schema"].status == "fail"
    assert results["load"].status == "skip" and "not run: file.external_data" in results["load"].message


def test_usage_errors(tmp_path: Path):
    with pytest.raises(GateUsageError, match="does not exist"):
        run_gate(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(GateUsageError, match="not a directory"):
        run_gate(tmp_path / "file")


# ------------------------------------------------------------------------------------ policy
def test_default_policy_file_matches_the_documented_defaults():
    assert load_policy() == GatePolicy()
    assert "budget_seconds = 120.0" in default_policy_text()


def test_policy_file_overrides_only_what_it_names(tmp_path: Path):
    path = tmp_path / "safety.toml"
    path.write_text('[quality]\nmin_metric = 0.8\n[file.opsets]\n"ai.onnx" = [13, 21]\n')
    policy = load_policy(path)
    assert policy.quality.min_metric == 0.8 and policy.file.opsets == {"ai.onnx": (13, 21)}
    assert policy.quality.max_ece == GatePolicy().quality.max_ece
    path.write_text('[file.opsets]\n"" = [13, 21]\n')
    assert load_policy(path).file.opsets == {"ai.onnx": (13, 21)}


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[quality\n", "not valid TOML"),
        ("[quality]\nmin_metrc = 1\n", "quality.min_metrc"),
        ("[sandbox]\nmemory_mb = 1\n", "sandbox.memory_mb"),
        ('[file.opsets]\n"ai.onnx" = [20, 9]\n', "above"),
    ],
)
def test_bad_policy_files_say_what_is_wrong(tmp_path: Path, text: str, fragment: str):
    path = tmp_path / "safety.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match="safety.toml") as info:
        load_policy(path)
    assert fragment in str(info.value)


# ------------------------------------------------------------------------------------ CLI
def test_cli_accepts_a_relative_bundle_path(good_bundle: Path, monkeypatch, capsys):
    monkeypatch.chdir(good_bundle.parent)
    assert main([good_bundle.name, "--no-write", "--quiet"]) == 0
    assert "PASSED" in capsys.readouterr().out


def test_cli_passing_bundle_writes_report_table_and_junit(good_bundle: Path, tmp_path: Path, capsys):
    junit = tmp_path / "gate.xml"
    policy = tmp_path / "fast.toml"
    policy.write_text("[resources]\nbatch1_repeats = 20\nmax_batch_repeats = 3\n")
    assert main([str(good_bundle), "--policy", str(policy), "--junit", str(junit)]) == 0
    out = capsys.readouterr().out
    assert "file.sha256" in out and "PASSED" in out and "inputs" in out
    report = read_gate(good_bundle)
    assert report.binds(ModelBundle.load(good_bundle).onnx_sha256)
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite" and int(suite.get("tests")) == len(report.checks)
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    assert {case.get("name") for case in suite.iter("testcase")} == {c.name for c in report.checks}


def test_cli_failing_bundle_exits_1(variant, good_card, tmp_path: Path, capsys):
    card = json.loads(good_card.model_dump_json())
    card["export"]["onnx_sha256"] = "f" * 64
    bundle = variant(card=card, keep_sha=True)
    junit = tmp_path / "gate.xml"
    assert main([str(bundle), "--junit", str(junit), "--quiet"]) == 1
    assert "FAILED" in capsys.readouterr().out
    report = read_gate(bundle)
    assert not report.passed and not report.binds(report.onnx_sha256)
    failures = [
        c.get("name") for c in ET.parse(junit).getroot().iter("testcase") if c.find("failure") is not None
    ]
    assert failures == ["file.sha256"]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["/no/such/bundle"], "does not exist"),
        ([], "the following arguments are required"),
        (["{bundle}", "--policy", "/no/such.toml"], "policy file /no/such.toml does not exist"),
        (["{bundle}", "--junit", "/no/such/dir/x.xml"], "--junit"),
        (["{bundle}", "--registry-url", "postgresql+psycopg://nobody@127.0.0.1:1/x"], "--registry-url: "),
        (["{bundle}", "--bogus"], "unrecognized"),
    ],
)
def test_cli_usage_errors_exit_2_with_one_line(good_bundle: Path, capsys, argv, fragment):
    argv = [a.replace("{bundle}", str(good_bundle)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_lockgate_check_subcommand_runs_end_to_end(variant):
    bundle = variant(b"\x00garbage")
    proc = subprocess.run(
        [sys.executable, "-m", "lockgate.cli", "check", str(bundle), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "FAILED" in proc.stdout and "Traceback" not in proc.stderr


class NoSandboxCheck:
    """A check (our protocol) meeting a machine where no worker can start."""

    name = "needs_sandbox"
    requires: tuple[str, ...] = ()
    description = "runs a worker with a missing interpreter"

    def run(self, ctx: GateContext, policy: GatePolicy) -> CheckResult:
        limits = dataclasses.replace(ctx.limits(), python="/nonexistent/python")
        run_job({"op": "inspect", "model": str(ctx.model_path)}, limits)
        return outcome(self, "pass")


def test_a_sandbox_that_cannot_start_is_a_harness_error(good_bundle: Path):
    with pytest.raises(SandboxError, match="cannot start the sandbox worker /nonexistent/python"):
        run_gate(good_bundle, GatePolicy(), checks=[NoSandboxCheck()], write=False)
