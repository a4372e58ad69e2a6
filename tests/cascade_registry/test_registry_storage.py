"""The storage layer: migrations run on open, the audit log is append-only in the database itself, every
operation is one transaction, URLs are normalized and bad ones named."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cascade_registry import ConflictError, InvalidInputError, Registry, RegistryUnavailableError
from cascade_registry.engine import resolve_url
from cascade_registry.settings import RegistrySettings
from tests.cascade_registry.conftest import changes


def test_migrated_to_head_on_open(fresh_registry_url: str) -> None:
    with Registry.open(fresh_registry_url) as registry, registry.store.db.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0008"
        assert conn.execute(text("SELECT generation FROM registry_state WHERE id = 1")).scalar() == 0


def test_audit_log_is_append_only(registry: Registry) -> None:
    registry.add_consumer("web", owner="o")
    engine = registry.store.db.engine
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.connect() as conn, conn.begin():
            conn.execute(text(statement))
    assert [e.actor for e in changes(registry)] == ["cli"]


def test_a_failing_operation_leaves_no_rows(registry: Registry, make_bundle) -> None:
    """registering b:2 fails after its version row and transitions were written (its consumer 'b' was
    revoked): the transaction rolls back and nothing of it remains."""
    registry.register(make_bundle("a", 1))
    registry.register(make_bundle("b", 1, upstream=["a:1"]))
    registry.revoke_consumer("b")
    before = (registry.generation(), len(changes(registry)), len(registry.declarations()))
    with pytest.raises(ConflictError, match="consumer 'b' was revoked"):
        registry.register(make_bundle("b", 2, upstream=["a:1"]))
    assert (registry.generation(), len(changes(registry)), len(registry.declarations())) == before
    assert [str(v.ref) for v in registry.versions()] == ["a:1", "b:1"]
    with registry.store.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM transitions")).scalar() == 4  # a:1 and b:1, two each


def test_every_write_bumps_the_generation_once(registry: Registry, make_bundle) -> None:
    g0 = registry.generation()
    registry.register(make_bundle("a", 1))
    registry.add_consumer("web", owner="o")
    registry.declare("web", "a")
    assert registry.generation() == g0 + 3
    registry.versions()
    registry.impact("a")
    assert registry.generation() == g0 + 3  # reads do not


def test_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_url(None) == "sqlite:///.lockgate/registry.db"
    assert resolve_url("reg.db") == "sqlite:///reg.db"
    assert resolve_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    monkeypatch.chdir(tmp_path)
    with Registry.open(None) as reg:
        assert reg.generation() == 0
    assert (tmp_path / ".lockgate" / "registry.db").is_file()
    with pytest.raises(InvalidInputError, match="in-memory"):
        Registry.open("sqlite://")
    with pytest.raises(InvalidInputError, match="supports sqlite and postgresql"):
        Registry.open("mysql://u@h/db")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RegistryUnavailableError):
        Registry.open(f"sqlite:///{tmp_path / 'file' / 'reg.db'}")


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCKGATE_REGISTRY_URL", str(tmp_path / "env.db"))
    monkeypatch.setenv("LOCKGATE_REGISTRY_ACTOR", "ci-bot")
    settings = RegistrySettings()
    assert (settings.url, settings.actor) == (str(tmp_path / "env.db"), "ci-bot")
    from cascade_registry.cli import main

    assert main(["consumer", "add", "web", "--owner", "o"]) == 0
    with Registry.open(str(tmp_path / "env.db")) as reg:
        assert [(e.actor, e.subject) for e in reg.audit()] == [("ci-bot", "web")]
