"""quality.regression against the currently released version in a real (SQLite) registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from safety import run_gate
from tests.bundles import TEST_KEY, open_trusting, train_bundle


@pytest.fixture(scope="module")
def weaker_bundle(bundles_root: Path) -> Path:
    """demo:2 — naive Bayes on the same data: clearly worse than demo:1's logistic regression."""
    return train_bundle(bundles_root / "train-weaker", version=2, model="naive_bayes", trials=1)


def check(report, name):
    return next(c for c in report.checks if c.name == name)


def test_regression_against_the_released_version(good_bundle, weaker_bundle, fast_policy, gate, tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    reg = open_trusting(url)
    try:
        reg.set_min_policy(fast_policy)  # the registry accepts the tests' faster policy
        assert run_gate(good_bundle, fast_policy, sign_key=TEST_KEY).passed
        reg.register(good_bundle)
        reg.release("demo:1")
    finally:
        reg.close()

    released_self = gate(good_bundle, fast_policy, "quality.regression", registry_url=url)
    assert check(released_self, "quality.regression").status == "pass"
    assert "itself the released version" in check(released_self, "quality.regression").message

    report = gate(weaker_bundle, fast_policy, "quality.regression", registry_url=url)
    result = check(report, "quality.regression")
    assert result.status == "fail", result
    assert (
        "worse than released demo:1" in result.message and "on this bundle's held-out rows" in result.message
    )
    assert result.value["this"] < result.value["demo:1"]
    assert check(report, "quality").status == "pass"  # fine on its own, only worse than what is out there

    lenient = fast_policy.with_changes(quality={"max_regression": 0.5})
    assert (
        check(run_gate(weaker_bundle, lenient, registry_url=url, write=False), "quality.regression").status
        == "pass"
    )
