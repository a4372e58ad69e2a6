"""Cascade pins (SQLite and PostgreSQL): card pins and owners written at register, atomic releases in
dependency order, waivers only from the owner, pins moved only by signed revalidation evidence, the
serving plan, the graph and impact showing effective pins, and the migration back-filling older data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cascade_registry import (
    CascadeBlockedError,
    ConflictError,
    GateError,
    InvalidInputError,
    OwnerError,
    Registry,
)
from cascade_registry.artifacts import ModelRef
from cascade_registry.attestation import sign_statement
from cascade_registry.engine import _MIGRATIONS
from cascade_registry.gate_policy import GatePolicy, policy_digest
from cascade_registry.rendering import render_mermaid
from cascade_registry.revalidation import RevalidationPredicate, revalidation_statement
from tests.bundles import TEST_KEY


def _evidence(registry: Registry, consumer: str, upstream: str, *, passed: bool = True, key=TEST_KEY) -> dict:
    """A revalidation statement signed by ``key`` (what ``lockgate registry revalidate`` writes)."""
    c, u = registry.get(consumer), registry.get(upstream)
    previous = next(p.upstream for p in registry.pins(consumer) if p.upstream.name == u.ref.name)
    predicate = RevalidationPredicate(
        consumer=c.ref,
        upstream=u.ref,
        previous=previous,
        passed=passed,
        checks=[],
        before={"f1_macro": 0.9},
        after={"f1_macro": 0.91},
        policy_sha256=policy_digest(GatePolicy().model_dump(mode="json")),
        holdout_rows=50,
        tool_version="tests",
        created_at=datetime.now(UTC),
    )
    envelope = sign_statement(revalidation_statement(predicate, c.onnx_sha256, u.onnx_sha256), key)
    return {"attestation": envelope.model_dump(mode="json", by_alias=True)}


def _pair(registry: Registry, make_bundle) -> None:
    """a:1 -> b:1 (owner team-b), both released; a:2 registered."""
    registry.register(make_bundle("a", 1), owner="team-a")
    registry.register(make_bundle("b", 1, upstream=["a:1"]), owner="team-b", actor="bob")
    registry.release_many(["a:1", "b:1"])
    registry.register(make_bundle("a", 2))


def test_register_writes_card_pins_and_owner(registry: Registry, make_bundle) -> None:
    _pair(registry, make_bundle)
    (pin,) = registry.pins("b:1")
    assert (str(pin.consumer), str(pin.upstream), pin.source, pin.card_version) == ("b:1", "a:1", "card", 1)
    assert registry.consumer("b").owner == "team-b" and registry.check_consumer("b", "a", 1).allowed
    generation = registry.generation()
    with pytest.raises(OwnerError, match="owned by 'team-b'"):
        registry.register(make_bundle("b", 2, upstream=["a:1"]), owner="mallory")
    assert registry.generation() == generation and len(registry.versions("b")) == 1


def test_release_of_several_is_atomic_and_in_dependency_order(registry: Registry, make_bundle) -> None:
    _pair(registry, make_bundle)
    registry.register(make_bundle("b", 2, upstream=["a:2"]))
    with pytest.raises(CascadeBlockedError, match="b:2 is pinned to a:2, which has never been released") as e:
        registry.release("b:2")
    assert "release a:2 b:2" in str(e.value)
    # one refusal inside the batch -> nothing released
    registry.register(make_bundle("z", 1))
    registry.register(make_bundle("c", 1, upstream=["z:1"]))
    generation = registry.generation()
    with pytest.raises(CascadeBlockedError, match="nothing released: refused: c:1 is pinned to z:1"):
        registry.release_many(["a:2", "b:2", "c:1"])
    assert registry.generation() == generation and registry.get("a:2").status == "gated_passed"
    released = registry.release_many(["b:2", "a:2"])
    assert [str(i.ref) for i in released] == ["a:2", "b:2"]
    assert registry.get("b:1").status == "superseded" and registry.waivers() == []
    plan = {str(e.info.ref): (e.role, e.pins) for e in registry.serving_plan()}
    assert plan == {"a:2": ("release", {}), "b:2": ("release", {"a": 2})}


def test_a_new_upstream_leaves_downstream_on_its_pin_and_waivers_come_only_from_the_owner(
    registry: Registry, make_bundle
) -> None:
    _pair(registry, make_bundle)
    registry.release("a:2")  # b:1 keeps a:1: the gateway loads a:1 as a composition part only
    assert registry.get("b:1").stale and registry.get("a:1").status == "superseded"
    report = registry.impact("a")
    assert report.latest_version == 2 and [str(p.consumer) for p in report.older_pins] == ["b:1"]
    plan = {str(e.info.ref): (e.role, e.pins) for e in registry.serving_plan()}
    assert plan == {"a:2": ("release", {}), "b:1": ("release", {"a": 1}), "a:1": ("pin", {})}
    with pytest.raises(CascadeBlockedError, match="released b:1 pinned to a:1"):
        registry.retire("a:1", reason="cleanup")
    registry.register(make_bundle("b", 2, upstream=["a:1"]))  # trained on the old upstream: stale
    with pytest.raises(CascadeBlockedError, match=r"b:2 is stale .*its owner \(team-b\)"):
        registry.release("b:2")
    with pytest.raises(InvalidInputError, match="names its owner"):
        registry.release("b:2", waiver="a:2 changes nothing b uses")
    with pytest.raises(OwnerError, match="b is owned by team-b"):
        registry.release("b:2", waiver="a:2 changes nothing b uses", owner="team-a")
    registry.release("b:2", waiver="a:2 changes nothing b uses", owner="team-b", actor="bob")
    (waiver,) = registry.waivers("b")
    assert (waiver.owner, waiver.actor, waiver.affected) == ("team-b", "bob", ["b:2"])
    registry.register(make_bundle("solo", 1))
    with pytest.raises(CascadeBlockedError, match="nothing to waive"):
        registry.release("solo:1", waiver="just in case", owner="team-b")


def test_a_pin_moves_only_with_signed_passing_evidence(registry: Registry, make_bundle) -> None:
    _pair(registry, make_bundle)
    with pytest.raises(ConflictError, match="may only be pinned to a version that is or was released"):
        registry.record_pin("b:1", "a:2", _evidence(registry, "b:1", "a:2"), actor="bob")
    registry.release("a:2")
    stranger = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    refusals = [
        ({}, "signed 'attestation'"),
        ({"attestation": {"payload": "x" * (1 << 20)}}, "larger than 1024 KB"),
        (_evidence(registry, "b:1", "a:2", key=stranger), "unknown key"),
        (_evidence(registry, "b:1", "a:2", passed=False), "failed"),
        (_evidence(registry, "b:1", "a:1"), "not a pass of b:1 on a:2"),
    ]
    generation = registry.generation()
    for evidence, match in refusals:
        with pytest.raises((GateError, InvalidInputError), match=match):
            registry.record_pin("b:1", "a:2", evidence, actor="bob")
    assert registry.generation() == generation
    pin = registry.record_pin("b:1", "a:2", _evidence(registry, "b:1", "a:2"), actor="bob")
    assert (str(pin.upstream), pin.source, pin.card_version) == ("a:2", "revalidated", 1)
    assert pin.evidence["after"] == {"f1_macro": 0.91} and pin.evidence["key_id"]
    assert registry.pins("b:1") == [pin]
    assert registry.check_consumer("b", "a", 2).allowed and not registry.check_consumer("b", "a", 1).allowed
    assert not registry.get("b:1").stale and registry.impact("a").older_pins == []
    plan = {str(e.info.ref): (e.role, e.pins) for e in registry.serving_plan()}
    assert plan == {"a:2": ("release", {}), "b:1": ("release", {"a": 2})}
    assert 'n_a -->|"v1 on v2 (revalidated; trained on v1)"| n_b' in render_mermaid(registry.cascade())
    assert [e.details["to"] for e in registry.audit("b") if e.action == "pin"] == ["a:2"]
    with pytest.raises(ConflictError, match="already pinned to a:2"):
        registry.record_pin("b:1", "a:2", _evidence(registry, "b:1", "a:2"), actor="bob")
    for statement in ("UPDATE cascade_pins SET upstream_version = 1", "DELETE FROM cascade_pins"):
        with pytest.raises(DBAPIError, match="append-only"), registry.store.db.engine.begin() as conn:
            conn.execute(text(statement))


def test_migration_back_fills_pins_and_owners(registry_url: str, make_bundle) -> None:
    with Registry.open(registry_url) as reg:
        reg.register(make_bundle("a", 1), actor="alice")
        reg.register(make_bundle("b", 1, upstream=["a:1"]), actor="bob")
        engine = reg.store.db.engine
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(_MIGRATIONS)))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0003")
    with Registry.open(registry_url) as reg:  # migrates back to the head, back-filling
        (pin,) = reg.pins("b:1")
        assert (pin.upstream, pin.source) == (ModelRef(name="a", version=1), "card")
        with pytest.raises(OwnerError, match="owned by 'bob'"):
            reg.register(make_bundle("b", 2, upstream=["a:1"]), owner="carol")
