"""Session fixtures shared by every test folder: the real public tables, each trained and gated once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.real_tables import TrainedTable, train_table


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
