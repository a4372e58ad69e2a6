"""Assemble the :class:`ModelCard`: infrastructure, runtime, cost and the how-to-consume paragraph."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

from cascade_registry.artifacts import CostInfo, FeatureSpec, InfrastructureInfo, InputPolicy

__all__ = ["consume_text", "describe_features", "describe_infrastructure", "estimate_cost"]

LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "scipy", "pandas", "pydantic")


def describe_infrastructure() -> InfrastructureInfo:
    """CPU model, cores, RAM, OS, Python and library versions of this machine."""
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    return InfrastructureInfo(
        cpu_model=_cpu_model(),
        cores=os.cpu_count() or 1,
        ram_gb=round(_ram_bytes() / 2**30, 2),
        os=platform.platform(),
        python=platform.python_version(),
        libraries=versions,
        device="cpu",
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: ")) and ":" in line:
                value = line.split(":", 1)[1].strip()
                if value and not value.isdigit():
                    return value
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _ram_bytes() -> float:
    try:
        import psutil

        return float(psutil.virtual_memory().total)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 0.0


def estimate_cost(cpu_seconds: float, price_per_core_hour: float) -> CostInfo:
    """Core-hours = CPU time of this process (all threads) / 3600, priced per core-hour."""
    core_hours = cpu_seconds / 3600.0
    return CostInfo(
        price_per_core_hour=price_per_core_hour,
        core_hours=core_hours,
        estimated_cost=core_hours * price_per_core_hour,
        currency="USD",
    )


def describe_features(names: list[str], X: np.ndarray) -> list[FeatureSpec]:
    """Observed ranges on the training split (the serving edge warns far outside them)."""
    return [
        FeatureSpec(
            name=name,
            dtype="float32",
            min=float(X[:, j].min()),
            max=float(X[:, j].max()),
            mean=float(X[:, j].mean()),
            std=float(X[:, j].std()),
        )
        for j, name in enumerate(names)
    ]


def consume_text(
    name: str,
    version: int,
    classes: list[str],
    n_features: int,
    method: str,
    threshold: float | None,
    policy: InputPolicy,
) -> str:
    decision = (
        f"For a yes/no decision on class {classes[1]!r}, compare probabilities[:, 1] with the recommended "
        f"threshold {threshold:.2f} (chosen to maximize F1 on the validation split) rather than using the "
        "label, which is the argmax (threshold 0.5)."
        if threshold is not None
        else "The label is the most probable class; use the probabilities when the cost of errors differs "
        "between classes."
    )
    calibration = "The probabilities are calibrated" + (
        f" ({method}, fitted on a held-out calibration split)"
        if method != "none"
        else " only as well as the model itself (no calibrator was fitted)"
    )
    return (
        f"Model {name}:{version} takes one float32 row of {n_features} features per example, in the order "
        f"of card.features, as the ONNX input 'input' [N, {n_features}]. It returns 'label' (int64 [N], an "
        f"index into card.classes = {classes}) and 'probabilities' (float32 [N, {len(classes)}], rows sum "
        f"to 1). {calibration}: a predicted 0.8 means about 80% of such rows belong to that class. "
        f"{decision} Inputs must be finite (NaN/inf are refused) and at most {policy.max_abs_value:.3g} in "
        f"magnitude, at most {policy.max_batch_rows} rows per request; values far outside the observed "
        "training ranges in card.features produce a warning, "
        "and predictions there are extrapolations. Check card.metrics for the quality you can expect, "
        "per class and per segment."
    )
