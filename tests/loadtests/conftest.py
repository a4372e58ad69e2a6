"""Shared fixtures: one trained (training.train) and gated (safety.run_gate) demo bundle per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bundles import gate_bundle, train_bundle


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = train_bundle(tmp_path_factory.mktemp("load-bundles"))
    gate_bundle(bundle)
    return bundle
