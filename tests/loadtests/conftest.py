"""Shared fixtures: the session's trained (training.train) and gated (safety.run_gate) demo bundle."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_bundle(gated_demo: Path) -> Path:
    """The shared ``gated_demo`` (tests/conftest.py): registered in place, never changed."""
    return gated_demo
