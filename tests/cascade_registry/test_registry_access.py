"""Consumers, API keys and check_access: declared consumers only, keys never in plain text, and the cache
refreshed within seconds of a change made by another process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cascade_registry import ConflictError, InvalidInputError, NotFoundError, Registry
from cascade_registry.schema import metadata


def _served(registry: Registry, make_bundle, name: str = "churn", version: int = 1) -> None:
    registry.register(make_bundle(name, version))
    registry.release(f"{name}:{version}")


def test_declared_consumer_with_a_live_key_is_allowed(registry: Registry, make_bundle) -> None:
    _served(registry, make_bundle)
    registry.add_consumer("web", kind="service", owner="team-web")
    key = registry.issue_key("web")
    assert registry.check_access(key, "churn").reason == "undeclared"
    registry.declare("web", "churn")
    decision = registry.check_access(key, "churn")
    assert (decision.allowed, decision.consumer, decision.reason) == (True, "web", "ok")
    assert registry.check_access(key, "churn") is decision  # cached


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (None, "missing_key"),
        ("", "missing_key"),
        ("secret", "unknown_key"),
        ("lg_000000000000_" + "A" * 43, "unknown_key"),
    ],
)
def test_missing_and_unknown_keys(registry: Registry, key, reason) -> None:
    decision = registry.check_access(key, "churn")
    assert (decision.allowed, decision.reason, decision.consumer) == (False, reason, None)
    assert decision.message


def test_wrong_secret_for_a_known_key_id_is_unknown(registry: Registry) -> None:
    registry.add_consumer("web", owner="o")
    key = registry.issue_key("web")
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert registry.check_access(forged, "churn").reason == "unknown_key"


def test_rotate_and_revoke(registry: Registry, make_bundle) -> None:
    _served(registry, make_bundle)
    registry.add_consumer("web", owner="o")
    registry.declare("web", "churn")
    old = registry.issue_key("web")
    new = registry.rotate_key("web")
    assert new != old
    assert registry.check_access(old, "churn").reason == "revoked_key"
    assert registry.check_access(new, "churn").allowed
    (revoked,) = registry.revoke_key("web")
    assert new.startswith(f"lg_{revoked}_")
    assert registry.check_access(new, "churn").reason == "revoked_key"
    with pytest.raises(NotFoundError, match="no active key"):
        registry.revoke_key("web")
    third = registry.rotate_key("web")  # with no active key, rotating just issues one
    assert registry.check_access(third, "churn").allowed
    registry.revoke_consumer("web")
    assert registry.check_access(third, "churn").reason == "revoked_key"
    with pytest.raises(ConflictError, match="revoked"):
        registry.issue_key("web")
    assert [c.active_keys for c in registry.consumers()] == [0]


def test_version_ranges(registry: Registry, make_bundle) -> None:
    _served(registry, make_bundle)
    registry.register(make_bundle("churn", 2))
    registry.add_consumer("web", owner="o")
    key = registry.issue_key("web")
    registry.declare("web", "churn", versions=">=2")
    assert registry.check_access(key, "churn").reason == "undeclared"  # released is churn:1
    assert registry.check_access(key, "churn", version=2).allowed
    registry.release("churn:2")
    assert registry.check_access(key, "churn").allowed
    assert registry.declarations("web")[0].versions == ">=2"
    with pytest.raises(InvalidInputError, match="malformed"):
        registry.declare("web", "churn", versions="latest")


def test_declaration_errors(registry: Registry, make_bundle) -> None:
    registry.register(make_bundle("churn", 1))
    with pytest.raises(NotFoundError, match="no consumer named 'web'"):
        registry.declare("web", "churn")
    registry.add_consumer("web", owner="o")
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        registry.declare("web", "nope")
    with pytest.raises(NotFoundError, match="no declaration"):
        registry.undeclare("web", "churn")
    with pytest.raises(ConflictError, match="already exists"):
        registry.add_consumer("web", owner="o")
    with pytest.raises(ConflictError, match="name of a registered model"):
        registry.add_consumer("churn", owner="o")
    for bad in ("Web", "1web", "we b", ""):
        with pytest.raises(InvalidInputError, match="malformed"):
            registry.add_consumer(bad, owner="o")
    with pytest.raises(InvalidInputError, match="kind"):
        registry.add_consumer("api", kind="robot", owner="o")
    registry.declare("web", "churn")
    registry.undeclare("web", "churn")
    assert registry.declarations("web") == []


def test_cache_sees_changes_made_by_another_registry(registry_url: str, make_bundle) -> None:
    """Two Registry objects = two replicas sharing one database: a revocation is seen within ~1 s."""
    gateway = Registry.open(registry_url, poll_seconds=0.2)
    admin = Registry.open(registry_url)
    try:
        _served(admin, make_bundle)
        admin.add_consumer("web", owner="o")
        admin.declare("web", "churn")
        key = admin.issue_key("web")
        assert gateway.check_access(key, "churn").allowed
        before = gateway.generation()
        admin.revoke_key("web")
        assert gateway.generation() > before
        deadline = time.monotonic() + 3.0
        while gateway.check_access(key, "churn").allowed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gateway.check_access(key, "churn").reason == "revoked_key"
    finally:
        gateway.close()
        admin.close()


def test_keys_are_never_stored_or_logged_in_plain_text(registry_url: str, make_bundle) -> None:
    registry = Registry.open(registry_url)
    _served(registry, make_bundle)
    registry.add_consumer("web", owner="o")
    registry.declare("web", "churn")
    keys = [registry.issue_key("web"), registry.rotate_key("web")]
    assert registry.check_access(keys[1], "churn").allowed
    audit_text = "".join(e.model_dump_json() for e in registry.audit())
    with registry.store.db.engine.connect() as conn:  # every row of every table, as text
        dump = "".join(str(list(conn.execute(t.select()))) for t in metadata.sorted_tables)
    registry.close()
    raw = b""
    if registry_url.startswith("sqlite:///"):  # and the database file itself, byte by byte
        db = Path(registry_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
        assert raw
    assert len(dump) > 1000
    for key in keys:
        secret = key.split("_", 2)[2]
        assert secret not in dump and secret not in audit_text and secret.encode() not in raw
        assert key[3:15] in audit_text and key[3:15] in dump  # the public key id is kept, the secret never


def test_cache_polls_the_generation_at_most_once_per_interval(registry: Registry, make_bundle) -> None:
    """With a hand-driven clock: another writer's change is invisible until the poll interval passes."""
    from cascade_registry.access import AccessCache

    _served(registry, make_bundle)
    registry.add_consumer("web", owner="o")
    registry.declare("web", "churn")
    key = registry.issue_key("web")
    clock = [100.0]
    cache = AccessCache(registry.store, poll_seconds=1.0, clock=lambda: clock[0])
    assert cache.check(key, "churn").allowed
    registry.revoke_key("web")  # invalidates the registry's own cache, not this one
    clock[0] += 0.5
    assert cache.check(key, "churn").allowed  # within the interval: the cached answer
    clock[0] += 0.6
    assert cache.check(key, "churn").reason == "revoked_key"  # generation re-read, cache dropped
