"""The registry's side of the console: console users (migration 0003), login, summaries, audit pages."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from cascade_registry import ConflictError, InvalidInputError, LoginError, Registry
from cascade_registry.engine import _MIGRATIONS
from tests.console.conftest import PASSWORD


def test_console_users_and_login(world) -> None:
    with Registry.open(world.url) as reg:
        assert [(u.name, u.role) for u in reg.console_users()] == [("alice", "operator"), ("bob", "viewer")]
        assert reg.login("alice", PASSWORD).role == "operator"
        for name, password in [("alice", "wrong password"), ("nobody", PASSWORD), ("Bad!", PASSWORD)]:
            with pytest.raises(LoginError, match="wrong console user name or password"):
                reg.login(name, password)
        with pytest.raises(InvalidInputError, match="8 to 256"):
            reg.add_console_user("carol", "short")
        with pytest.raises(InvalidInputError, match="role"):
            reg.add_console_user("carol", PASSWORD, role="root")
        with pytest.raises(ConflictError):
            reg.add_console_user("alice", PASSWORD)
        reg.disable_console_user("bob", actor="tests")
        with pytest.raises(LoginError):
            reg.login("bob", PASSWORD)
        hashes = reg.store.db.read(lambda c: c.execute(text("SELECT password_hash FROM console_users")).all())
        assert all(PASSWORD not in h for (h,) in hashes)
        actions = [(e.actor, e.action) for e in reg.audit() if e.action.startswith("console.")]
        assert ("alice", "console.login") in actions and ("tests", "console.user_disable") in actions


def test_summaries_and_audit_page(world) -> None:
    with Registry.open(world.url) as reg:
        rows = {s.name: s for s in reg.summaries()}
        assert rows["churn"].released_version == 1 and rows["churn"].consumers == ["scorer", "web"]
        assert rows["bad"].last_gate == "failed" and rows["churn"].last_gate == "passed"
        page = reg.audit_page(action="release", limit=1)
        assert len(page) == 1 and page[0].subject == "scorer:1"
        older = reg.audit_page(action="release", before=page[0].id)
        assert [e.subject for e in older] == ["churn:1"]


def test_migration_0003_down_and_up_keeps_data(world) -> None:
    with Registry.open(world.url) as reg, reg.store.db.engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    with Registry.open(world.url) as reg:  # back to head on open; versions kept, users gone
        assert reg.get("churn:1").status == "released" and reg.console_users() == []
