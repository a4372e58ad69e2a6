"""Small real bundles for every test folder: made by the real training code and the real gate."""

from __future__ import annotations

from pathlib import Path

from cascade_registry.artifacts import GateReport


def train_bundle(
    out: Path,
    *,
    name: str = "demo",
    version: int = 1,
    seed: int = 0,
    model: str = "logistic_regression",
    calibration: str = "sigmoid",
    trials: int = 2,
    data: str = "breast_cancer",
) -> Path:
    """Train (``training.train``) a small bundle into ``out/<name>-<version>`` and return its path."""
    from training import TrainConfig, train

    return train(
        TrainConfig(
            data=data,
            model=model,
            calibration=calibration,
            trials=trials,
            seed=seed,
            name=name,
            version=version,
            out=out,
            progress=False,
        )
    )


def gate_bundle(bundle: Path) -> GateReport:
    """Run the real safety gate (``safety.run_gate``) on ``bundle``, write gate.json, demand a pass."""
    from safety import GatePolicy, run_gate

    report = run_gate(bundle, GatePolicy())
    assert report.passed, [c for c in report.checks if c.status != "pass"]
    return report
