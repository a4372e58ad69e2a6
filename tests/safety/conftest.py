"""Fixtures for the safety gate: a real trained bundle, and a corpus of bad models built here.

The good bundle comes from ``training.train`` (real scikit-learn, real skl2onnx export). Hostile models
are small ONNX graphs written with ``onnx.helper`` that keep the bundle contract where they need to (one
input ``input`` float32 [N, F]; outputs ``label`` int64 [N] and ``probabilities`` float32 [N, C]) so each
is rejected by the check it targets, not by an earlier one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from cascade_registry.artifacts import CARD_FILE, MODEL_FILE, GateReport, ModelCard, sha256_file
from safety import GatePolicy, run_gate
from safety.checks import checks_for
from tests.bundles import train_bundle


@pytest.fixture(scope="session")
def bundles_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("safety-bundles")


@pytest.fixture(scope="session")
def good_bundle(bundles_root: Path) -> Path:
    """demo:1 — breast cancer, logistic regression + sigmoid calibration, exported by training."""
    return train_bundle(bundles_root / "train")


@pytest.fixture(scope="session")
def good_card(good_bundle: Path) -> ModelCard:
    return ModelCard.model_validate_json((good_bundle / CARD_FILE).read_text())


@pytest.fixture(scope="session")
def fast_policy() -> GatePolicy:
    """Small sandbox limits so the hostile cases end in seconds."""
    return GatePolicy().with_changes(
        sandbox={"memory_mb": 768, "cpu_seconds": 2, "wall_seconds": 3.0},
        resources={"batch1_repeats": 20, "max_batch_repeats": 3},
    )


@pytest.fixture()
def variant(good_bundle: Path, tmp_path: Path) -> Callable[..., Path]:
    """Copy the good bundle, optionally replacing model.onnx (bytes or a ModelProto) and the card.

    The card's ``export.onnx_sha256`` follows the new model unless ``keep_sha`` is set, so only the check
    under test objects.
    """
    counter = iter(range(1000))

    def make(
        model: onnx.ModelProto | bytes | None = None, *, card: dict | None = None, keep_sha: bool = False
    ) -> Path:
        target = tmp_path / f"demo-1-{next(counter)}"
        shutil.copytree(good_bundle, target)
        if model is not None:
            raw = model if isinstance(model, bytes) else model.SerializeToString()
            (target / MODEL_FILE).write_bytes(raw)
        data = card if card is not None else json.loads((target / CARD_FILE).read_text())
        if not keep_sha and (target / MODEL_FILE).is_file():
            data.setdefault("export", {})["onnx_sha256"] = sha256_file(target / MODEL_FILE)
        (target / CARD_FILE).write_text(json.dumps(data))
        return target

    return make


@pytest.fixture(scope="session")
def shape(good_card: ModelCard) -> tuple[int, int]:
    """(number of features, number of classes) of the good bundle."""
    return len(good_card.features), len(good_card.classes)


@pytest.fixture(scope="session")
def gate() -> Callable[..., GateReport]:
    """``gate(bundle, policy, *targets)``: run only the target checks and their prerequisites (fast), or
    every check when no target is named. Never writes gate.json for a partial run."""

    def run(
        bundle: Path, policy: GatePolicy, *targets: str, registry_url: str | None = None, serve: bool = False
    ) -> GateReport:
        if not targets:
            return run_gate(bundle, policy, registry_url=registry_url, serve=serve)
        subset = checks_for(targets)
        return run_gate(bundle, policy, checks=subset, write=False, registry_url=registry_url, serve=serve)

    return run
