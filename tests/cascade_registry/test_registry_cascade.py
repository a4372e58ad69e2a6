"""The cascade: model consumers declared from cards, cycles refused by name, impact in topological order,
stale marking through three levels, released downstream models kept on their pins when a new upstream is
released, retrained cascades released in one batch, and waivers recorded and shown."""

from __future__ import annotations

import pytest

from cascade_registry import CascadeBlockedError, CycleError, NotFoundError, Registry
from cascade_registry.cascade import downstream_layers, find_cycle, stale_closure


def _chain(registry: Registry, make_bundle) -> None:
    """a:1 -> b:1 -> c:1 -> d:1, all released, plus a service 'web' on d."""
    registry.register(make_bundle("a", 1))
    registry.register(make_bundle("b", 1, upstream=["a:1"]))
    registry.register(make_bundle("c", 1, upstream=["b:1"]))
    registry.register(make_bundle("d", 1, upstream=["c:1"]))
    for ref in ("a:1", "b:1", "c:1", "d:1"):
        registry.release(ref)
    registry.add_consumer("web", owner="team-web")
    registry.declare("web", "d")


def test_card_upstream_declares_a_pinned_model_consumer(registry: Registry, make_bundle) -> None:
    registry.register(make_bundle("a", 1))
    registry.register(make_bundle("b", 1, upstream=["a:1"]))
    (decl,) = registry.declarations("b")
    assert (decl.consumer_kind, decl.model, decl.versions, decl.pinned_version) == ("model", "a", "==1", 1)
    assert (decl.source, decl.consumer_version) == ("card", 1)
    assert registry.consumer("b").kind == "model"
    assert registry.check_consumer("b", "a", version=1).allowed
    assert registry.check_consumer("b", "a", version=2).reason == "undeclared"
    with pytest.raises(NotFoundError, match="upstream zz:1, which is not registered"):
        registry.register(make_bundle("c", 1, upstream=["zz:1"]))


def test_impact_lists_downstream_in_topological_order(registry: Registry, make_bundle) -> None:
    _chain(registry, make_bundle)
    registry.register(make_bundle("e", 1, upstream=["a:1", "c:1"]))  # a diamond: e after c
    report = registry.impact("a")
    order = [(e.consumer, e.depth, e.action) for e in report.entries]
    assert order == [
        ("b", 1, "retrain"),
        ("c", 2, "retrain"),
        ("d", 3, "retrain"),
        ("e", 3, "retrain"),
        ("web", 4, "revalidate"),
    ]
    e = report.entries[3]
    assert {(p.upstream, p.upstream_version) for p in e.pins} == {("a", 1), ("c", 1)}
    assert report.released_version == 1 and report.waivers == []
    assert registry.impact("d").entries[0].consumer == "web"
    assert registry.impact("d").entries[0].kind == "service"


def test_a_new_upstream_release_leaves_released_downstream_on_its_pins_three_levels_stale(
    registry: Registry, make_bundle
) -> None:
    _chain(registry, make_bundle)
    registry.register(make_bundle("c", 2, upstream=["b:1"]))  # unreleased, trained on b:1 -> stale too
    registry.register(make_bundle("a", 2))
    info = registry.release("a:2", actor="carol")
    assert info.status == "released" and registry.get("a:1").status == "superseded"
    for ref in ("b:1", "c:1", "d:1"):
        v = registry.get(ref)
        assert (v.status, v.stale) == ("released", True), ref  # still served, on its pins, flagged
    assert registry.get("c:2").status == "stale"
    assert "a:1" in registry.get("b:1").stale_reason and "b:1" in registry.get("c:1").stale_reason
    report = registry.impact("a")
    assert {e.consumer: e.stale_versions for e in report.entries}["c"] == [1, 2]
    stale_audit = [e.subject for e in registry.audit() if e.action == "stale"]
    assert sorted(stale_audit) == ["b:1", "c:1", "c:2", "d:1"]
    (release,) = [e for e in registry.audit("a") if e.action == "release" and e.subject == "a:2"]
    assert release.details["older_pins"] == ["b:1"]
    # a stale version needs its owner's waiver to be released
    with pytest.raises(CascadeBlockedError, match="is stale"):
        registry.release("c:2")
    registry.release("c:2", waiver="c:2 fixes a bug; b:1 output unchanged", owner="cli", actor="carol")
    (waiver,) = registry.waivers("c")
    assert (str(waiver.ref), waiver.owner, waiver.actor) == ("c:2", "cli", "carol")
    assert registry.impact("a").waivers == [] and registry.impact("c").waivers == [waiver]
    # a new version trained on a stale upstream arrives stale
    assert registry.register(make_bundle("e", 1, upstream=["b:1"])).stale


def test_a_retrained_cascade_is_released_in_one_batch(registry: Registry, make_bundle) -> None:
    _chain(registry, make_bundle)
    registry.register(make_bundle("a", 2))
    registry.register(make_bundle("b", 2, upstream=["a:2"]))
    registry.register(make_bundle("c", 2, upstream=["b:2"]))
    registry.register(make_bundle("d", 2, upstream=["c:2"]))
    generation = registry.generation()
    with pytest.raises(CascadeBlockedError, match=r"b:2 is pinned to a:2, which has never been released"):
        registry.release("b:2")
    assert registry.generation() == generation
    released = registry.release_many(["d:2", "c:2", "b:2", "a:2"])
    assert [str(i.ref) for i in released] == ["a:2", "b:2", "c:2", "d:2"]
    assert not any(v.stale for v in registry.released()) and registry.waivers() == []


def test_cycles_are_refused_naming_the_cycle(registry: Registry, make_bundle) -> None:
    registry.register(make_bundle("a", 1))
    registry.register(make_bundle("b", 1, upstream=["a:1"]))
    registry.register(make_bundle("c", 1, upstream=["b:1"]))
    registry.add_consumer("a", kind="model", owner="o")
    generation = registry.generation()
    with pytest.raises(CycleError, match="c -> a -> b -> c") as err:
        registry.declare("a", "c")
    assert err.value.cycle == ["c", "a", "b", "c"]
    with pytest.raises(CycleError, match="a -> a"):
        registry.declare("a", "a")
    with pytest.raises(CycleError, match="c -> a -> b -> c"):
        registry.register(make_bundle("a", 2, upstream=["c:1"]))
    assert registry.generation() == generation and len(registry.versions("a")) == 1


def test_graph_functions() -> None:
    edges = {"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": {"e"}}
    assert downstream_layers(edges, "a") == [("b", 1), ("c", 1), ("d", 2), ("e", 3)]
    assert find_cycle(edges, "e", "a") == ["e", "a", "b", "d", "e"]
    assert find_cycle(edges, "a", "e") is None
    pins = [("b", 1, "a", 1), ("b", 2, "a", 2), ("c", 1, "b", 1), ("c", 2, "b", 2)]
    assert set(stale_closure(pins, "a", 2)) == {("b", 1), ("c", 1)}
