"""Session fixtures shared by every test folder: the real public tables, each trained and gated once.

Every gateway a test starts (``lockgate serve``, directly or through the CLI, the demo and the README
walk-through) runs one worker unless the test asks for more with ``--workers N``: the default, one per
core, would start each of them twice over on the 2-core test machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.real_tables import TrainedTable, train_table

os.environ.setdefault("LOCKGATE_SERVE_WORKERS", "1")


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
