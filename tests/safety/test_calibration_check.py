"""The gate's calibration check: ceilings on the held-out rows, each failure naming its policy key."""

from __future__ import annotations

from pathlib import Path

from cascade_registry.gate_policy import GatePolicy
from safety.policy import load_policy


def test_log_loss_ceiling_is_a_policy_key(good_bundle: Path, fast_policy: GatePolicy, gate) -> None:
    """Issue 18, finding 2: calibration is judged by log loss too, not by ECE alone."""
    assert load_policy(None).calibration.max_log_loss == 2.0  # the shipped default_policy.toml
    passed = next(c for c in gate(good_bundle, fast_policy, "calibration").checks if c.name == "calibration")
    assert passed.status == "pass" and passed.limit["log_loss"] == "<= 2.0"
    strict = fast_policy.with_changes(calibration={"max_log_loss": passed.value["log_loss"] / 2})
    failed = next(c for c in gate(good_bundle, strict, "calibration").checks if c.name == "calibration")
    assert failed.status == "fail" and "(calibration.max_log_loss)" in failed.message
    assert f"log loss {passed.value['log_loss']:.4f} >" in failed.message
