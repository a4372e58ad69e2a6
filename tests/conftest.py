"""Session fixtures every test folder shares: ONE trained demo bundle, ONE gated copy of it, and the real
public tables, each trained and gated once.

Training and the real gate are the expensive steps of the suite (see docs/testing.md): reuse these
instead of training or gating your own. All are read-only for tests: copy a bundle
(``shutil.copytree``) before changing, adding or deleting any of its files. Registering one in place is
fine (a registry reads a bundle; it never writes into it).

Every gateway a test starts (``lockgate serve``, directly or through the CLI, the demo and the README
walk-through) runs one worker unless the test asks for more with ``--workers N``: the default, one per
core, would start each of them twice over on the 2-core test machine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.bundles import gate_bundle, train_bundle
from tests.real_tables import TrainedTable, train_table

os.environ.setdefault("LOCKGATE_SERVE_WORKERS", "1")


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


@pytest.fixture(scope="session")
def real_table(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], TrainedTable]:
    """``real_table(name)`` -> the table trained by ``lockgate train`` and passed by the real gate; each
    table is trained at most once per session, on first use."""
    done: dict[str, TrainedTable] = {}

    def get(name: str) -> TrainedTable:
        if name not in done:
            done[name] = train_table(name, tmp_path_factory.mktemp(f"table-{name}"))
        return done[name]

    return get
