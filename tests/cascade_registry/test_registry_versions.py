"""Registering, reading and releasing versions; the gate binding; statuses with who and when."""

from __future__ import annotations

import pytest

from cascade_registry import (
    BundleRejectedError,
    ConflictError,
    GateError,
    InvalidInputError,
    NotFoundError,
    Registry,
)
from cascade_registry.artifacts import CARD_FILE, ModelRef
from tests.cascade_registry.conftest import changes


def test_register_records_the_bundle(registry: Registry, make_bundle) -> None:
    bundle = make_bundle("churn", 1)
    info = registry.register(bundle, actor="alice")
    assert info.ref == ModelRef(name="churn", version=1)
    assert info.status == "gated_passed"  # gate.json in the bundle binds its sha256
    assert info.bundle_path == str(bundle.resolve())
    assert info.onnx_sha256 == info.card.export.onnx_sha256 and len(info.onnx_sha256) == 64
    assert info.released_at is None and info.registered_by == "alice"
    assert registry.get("churn:1") == info
    assert [v.ref.version for v in registry.versions("churn")] == [1]
    steps = [(t.from_status, t.to_status, t.actor) for t in registry.transitions("churn:1")]
    assert steps == [(None, "registered", "alice"), ("registered", "gated_passed", "alice")]


def test_register_without_gate_is_registered(registry: Registry, make_bundle) -> None:
    assert registry.register(make_bundle("a", 1, gate=None)).status == "registered"
    assert registry.register(make_bundle("b", 1, gate="fail")).status == "gated_failed"


def test_release_needs_a_passing_gate_bound_to_the_sha(registry: Registry, make_bundle) -> None:
    no_gate = make_bundle("a", 1, gate=None)
    registry.register(no_gate)
    with pytest.raises(GateError, match="no readable gate report"):
        registry.release("a:1")
    failing = make_bundle("b", 1, gate="fail")
    registry.register(failing)
    with pytest.raises(GateError, match="failed the safety gate"):
        registry.release("b:1")
    # a passing report made for another model file does not count
    other = make_bundle("c", 1)
    (no_gate / "gate.json").write_bytes((other / "gate.json").read_bytes())
    with pytest.raises(GateError):
        registry.release("a:1")
    before = registry.generation()
    assert registry.get("a:1").status == "registered" and registry.released() == []
    assert registry.generation() == before  # refusals write nothing


def test_release_supersedes_the_previous_version(registry: Registry, make_bundle) -> None:
    registry.register(make_bundle("m", 1))
    registry.register(make_bundle("m", 2))
    first = registry.release("m:1", actor="bob")
    assert first.status == "released" and first.released_by == "bob" and first.released_at is not None
    registry.release("m:2")
    assert [(v.ref.version, v.status) for v in registry.versions("m")] == [(1, "superseded"), (2, "released")]
    assert [str(v.ref) for v in registry.released()] == ["m:2"]
    with pytest.raises(ConflictError, match="already released"):
        registry.release("m:2")
    actions = [e.action for e in changes(registry)]
    assert actions == ["register", "register", "release", "supersede", "release"]


def test_duplicates_are_refused(registry: Registry, make_bundle, tmp_path) -> None:
    bundle = make_bundle("a", 1)
    registry.register(bundle)
    with pytest.raises(ConflictError, match="already registered as a:1"):
        registry.register(bundle)
    with pytest.raises(ConflictError, match="a:1 is already registered"):
        registry.register(make_bundle("a", 1, root=tmp_path / "other"))
    assert len(registry.versions()) == 1 and len(changes(registry)) == 1


def test_bad_input_is_named(registry: Registry, make_bundle, tmp_path) -> None:
    with pytest.raises(BundleRejectedError, match="is not a directory"):
        registry.register(tmp_path / "missing")
    broken = make_bundle("a", 1)
    (broken / CARD_FILE).write_text("{not json")
    with pytest.raises(BundleRejectedError, match="not readable JSON"):
        registry.register(broken)
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        registry.get("nope:1")
    registry.register(make_bundle("b", 1))
    with pytest.raises(NotFoundError, match="known versions: 1"):
        registry.get("b:7")
    for bad in ("B:1", "b", "b:x", "b:0"):
        with pytest.raises(InvalidInputError):
            registry.get(bad)
    assert registry.versions() and len(changes(registry)) == 1


def test_retire(registry: Registry, make_bundle) -> None:
    registry.register(make_bundle("a", 1))
    registry.release("a:1")
    assert registry.retire("a:1", reason="broken upstream data").status == "retired"
    assert registry.released() == []
    with pytest.raises(ConflictError):
        registry.release("a:1")


def test_record_gate_after_registration(registry: Registry, make_bundle, write_gate) -> None:
    bundle = make_bundle("a", 1, gate=None)
    info = registry.register(bundle)
    with pytest.raises(GateError, match="no readable gate report"):
        registry.record_gate("a:1")
    write_gate(bundle, info.ref, info.onnx_sha256, passed=False)
    assert registry.record_gate("a:1", actor="gatekeeper").status == "gated_failed"
    write_gate(bundle, info.ref, info.onnx_sha256, passed=True)
    assert registry.record_gate("a:1").status == "gated_passed"
    steps = [t.to_status for t in registry.transitions("a:1")]
    assert steps == ["registered", "gated_failed", "gated_passed"]
    assert registry.release("a:1").status == "released"


def test_a_changed_model_file_is_not_released(registry: Registry, make_bundle) -> None:
    bundle = make_bundle("a", 1)
    registry.register(bundle)
    (bundle / "model.onnx").write_bytes((bundle / "model.onnx").read_bytes() + b"\0")
    with pytest.raises(GateError, match="no longer loadable"):
        registry.release("a:1")
    assert registry.released() == []
