"""Shared fixtures: one trained (training.train) and gated (safety.run_gate) demo bundle per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from safety import GatePolicy, run_gate
from training import TrainConfig, train


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("load-bundles")
    bundle = train(
        TrainConfig(
            data="breast_cancer",
            model="logistic_regression",
            calibration="sigmoid",
            trials=2,
            seed=0,
            name="demo",
            version=1,
            out=out,
            progress=False,
        )
    )
    report = run_gate(bundle, GatePolicy())
    assert report.passed, [c for c in report.checks if c.status != "pass"]
    return bundle
