"""Session fixtures every test folder shares: ONE trained demo bundle and ONE gated copy of it.

Training and the real gate are the expensive steps of the suite (see docs/testing.md): reuse these
instead of training or gating your own. Both are read-only for tests: copy a bundle
(``shutil.copytree``) before changing, adding or deleting any of its files. Registering one in place is
fine (a registry reads a bundle; it never writes into it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.bundles import gate_bundle, train_bundle


@pytest.fixture(scope="session")
def trained_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """demo:1: breast_cancer, logistic regression + sigmoid on one calibration split, one search trial
    (seed 0); no gate.json."""
    return train_bundle(tmp_path_factory.mktemp("shared-trained"), trials=1)


@pytest.fixture(scope="session")
def gated_demo(trained_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`trained_demo` with the passing gate.json of the real gate (``safety.run_gate``, default
    policy), signed by the session's test key (``tests.bundles.TEST_KEY``)."""
    bundle = shutil.copytree(trained_demo, tmp_path_factory.mktemp("shared-gated") / trained_demo.name)
    gate_bundle(bundle)
    return bundle
