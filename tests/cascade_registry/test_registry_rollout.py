"""Shadow and canary rollouts in the registry (SQLite and PostgreSQL): start, the serving plan, promote,
rollback (of a rollout in progress and of the last promote), the cascade (downstream pins kept, dead pins
refused), one audit row per operation, and bad input refused with nothing written. The gateway side is
tests/serving/test_serving_rollout.py."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, func, select

from cascade_registry import CascadeBlockedError, ConflictError, GateError, InvalidInputError, NotFoundError
from cascade_registry.cli import main
from cascade_registry.registry import parse_share
from cascade_registry.schema import rollouts
from tests.cascade_registry.conftest import changes


def _plan(registry) -> dict[str, tuple]:
    return {
        str(e.info.ref): (e.role, e.pins, e.rollout.mode if e.rollout else None)
        for e in registry.serving_plan()
    }


def _two_versions(registry, make_bundle) -> None:
    registry.register(make_bundle("b", 1))
    registry.release("b:1")
    registry.register(make_bundle("b", 2))


def test_shadow_then_canary_then_promote_then_rollback(registry, make_bundle):
    _two_versions(registry, make_bundle)
    shadow = registry.start_rollout("b:2", "shadow", actor="ann")
    assert (shadow.mode, shadow.share, str(shadow.live), str(shadow.candidate)) == (
        "shadow",
        1.0,
        "b:1",
        "b:2",
    )
    assert _plan(registry) == {"b:1": ("release", {}, None), "b:2": ("shadow", {}, "shadow")}
    assert registry.get("b:2").status == "gated_passed" and registry.get("b:1").status == "released"

    canary = registry.start_rollout("b:2", "canary", "10%", sticky="consumer", actor="ann")
    assert (canary.share, canary.sticky) == (0.1, "consumer")
    assert registry.rollout("b") == canary
    assert [r.outcome for r in registry.rollouts("b")] == [None, "changed"]
    assert _plan(registry)["b:2"] == ("canary", {}, "canary")

    with pytest.raises(ConflictError, match="rollout of b:2 in progress"):
        registry.release("b:2")  # a plain release would pull the live version from under the rollout
    with pytest.raises(ConflictError, match="promote b:2"):
        registry.retire("b:2", reason="x")

    ended, released = registry.promote("b:2", actor="ann")
    assert ended.outcome == "promoted" and released.status == "released"
    assert registry.get("b:1").status == "superseded" and registry.rollout("b") is None
    assert _plan(registry) == {"b:2": ("release", {}, None)}

    undone = registry.rollback("b", actor="ann")  # right after a promote: b:1 is released again
    assert undone.outcome == "rolled_back"
    assert registry.get("b:1").status == "released" and registry.get("b:2").status == "superseded"
    with pytest.raises(ConflictError, match="nothing to roll back"):
        registry.rollback("b")

    actions = [(e.action, e.subject) for e in changes(registry)]
    assert actions[-8:] == [
        ("shadow", "b:2"),
        ("canary", "b:2"),  # the same candidate, another mode: one row ends 'changed', one starts
        ("supersede", "b:1"),
        ("release", "b:2"),
        ("promote", "b:2"),
        ("supersede", "b:2"),
        ("release", "b:1"),
        ("rollback", "b:1"),
    ]


def test_rollback_of_a_rollout_in_progress_keeps_the_live_version(registry, make_bundle):
    _two_versions(registry, make_bundle)
    registry.start_rollout("b:2", "canary", 0.25)
    generation = registry.generation()
    ended = registry.rollback("b", actor="ops")
    assert (ended.outcome, ended.ended_by) == ("rolled_back", "ops")
    assert registry.generation() > generation  # the gateway notices within a poll
    assert _plan(registry) == {"b:1": ("release", {}, None)}
    assert registry.get("b:1").status == "released" and registry.get("b:2").status == "gated_passed"
    assert changes(registry)[-1].action == "rollback"
    with pytest.raises(ConflictError, match="nothing to roll back"):
        registry.rollback("b")  # the last rollout was rolled back, not promoted


@pytest.mark.parametrize(
    ("share", "fraction"), [("10%", 0.1), ("2.5%", 0.025), ("100%", 1.0), (10, 0.1), (0.3, 0.3), ("7", 0.07)]
)
def test_shares_read_as_percent_or_fraction(share, fraction):
    assert parse_share(share) == pytest.approx(fraction)


@pytest.mark.parametrize("share", ["0%", "0", "101%", "-5%", "ten", "nan%", "inf%", 0.0, 1.5])
def test_a_share_outside_0_to_100_percent_is_refused(share):
    with pytest.raises(InvalidInputError, match="more than 0 % and at most 100 %"):
        parse_share(share)


def _rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(rollouts)).scalar()
    finally:
        engine.dispose()


def test_refusals_write_nothing(registry, registry_url, make_bundle):
    _two_versions(registry, make_bundle)
    registry.register(make_bundle("b", 3, gate="fail"))
    registry.register(make_bundle("c", 1))  # c has no released version
    before = (len(registry.audit()), registry.generation())
    refusals = [
        (NotFoundError, "no version 9", lambda: registry.start_rollout("b:9", "shadow")),
        (GateError, "failed the safety gate", lambda: registry.start_rollout("b:3", "shadow")),
        (ConflictError, "already the released version", lambda: registry.start_rollout("b:1", "shadow")),
        (ConflictError, "no released version", lambda: registry.start_rollout("c:1", "canary", "5%")),
        (InvalidInputError, "at most 100 %", lambda: registry.start_rollout("b:2", "canary", "150%")),
        (InvalidInputError, "needs its share", lambda: registry.start_rollout("b:2", "canary")),
        (InvalidInputError, "takes no share", lambda: registry.start_rollout("b:2", "shadow", "5%")),
        (InvalidInputError, "unknown", lambda: registry.start_rollout("b:2", "blue-green")),
        (InvalidInputError, "stickiness", lambda: registry.start_rollout("b:2", "canary", "5%", sticky="ip")),
        (ConflictError, "no rollout of b:2", lambda: registry.promote("b:2")),
        (ConflictError, "nothing to roll back", lambda: registry.rollback("b")),
    ]
    for error, message, call in refusals:
        with pytest.raises(error, match=message):
            call()
    assert (len(registry.audit()), registry.generation()) == before and _rows(registry_url) == 0

    registry.start_rollout("b:2", "shadow")
    registry.register(make_bundle("b", 4))
    with pytest.raises(ConflictError, match="already has a shadow rollout of b:2"):
        registry.start_rollout("b:4", "shadow")
    with pytest.raises(ConflictError, match="already in a shadow rollout"):
        registry.start_rollout("b:2", "shadow")
    assert _rows(registry_url) == 1


def test_cascade_downstream_keeps_its_pin_and_dead_pins_are_refused(registry, make_bundle):
    registry.register(make_bundle("a", 1), owner="team-a")
    registry.register(make_bundle("b", 1, upstream=["a:1"]), owner="team-b")
    registry.release_many(["a:1", "b:1"])
    registry.register(make_bundle("a", 2))
    registry.register(make_bundle("b", 2, upstream=["a:2"]))

    with pytest.raises(CascadeBlockedError, match="pinned to a:2, which has never been released"):
        registry.start_rollout("b:2", "shadow")  # its pin must be on a version that is or was released

    registry.start_rollout("a:2", "canary", "10%")
    plan = _plan(registry)
    assert plan["b:1"] == ("release", {"a": 1}, None)  # b keeps composing a:1: a canary routes direct callers
    assert plan["a:2"] == ("canary", {}, "canary") and plan["a:1"] == ("release", {}, None)
    audit = changes(registry)[-1]
    assert audit.action == "canary" and audit.details["downstream_keep_pins"] == ["b:1 (pinned to a:1)"]

    registry.promote("a:2")  # a release like any other: b:1 is left on an older pin and flagged stale
    assert registry.get("b:1").stale and _plan(registry)["a:1"] == ("pin", {}, None)
    registry.register(make_bundle("b", 3, upstream=["a:1"]))  # trained on the superseded a:1: stale
    with pytest.raises(CascadeBlockedError, match="stale .* a rollout takes no waiver"):
        registry.start_rollout("b:3", "shadow")
    registry.start_rollout("b:2", "shadow")  # pinned to the released a:2: composed with it beside b:1
    plan = _plan(registry)
    assert plan["b:2"] == ("shadow", {"a": 2}, "shadow") and plan["b:1"] == ("release", {"a": 1}, None)


@pytest.fixture
def run(registry_url: str, capsys):
    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(["--url", registry_url, "--actor", "tester", *argv])
        except SystemExit as e:  # argparse's usage errors
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli(run, make_bundle, registry_url):
    run("register", str(make_bundle("b", 1)))
    run("release", "b:1")
    run("register", str(make_bundle("b", 2)))
    run("register", str(make_bundle("b", 3, gate="fail")))
    for argv, message, status in [
        (("release", "b:2", "--canary", "0%"), "more than 0 %", 2),
        (("release", "b:2", "--canary", "120%"), "at most 100 %", 2),
        (("release", "b:2", "--shadow", "--canary", "5%"), "not allowed with argument", 2),
        (("release", "b:2", "b:1", "--shadow"), "takes one NAME:VERSION", 2),
        (("release", "b:9", "--shadow"), "has no version 9", 1),
        (("release", "b:3", "--canary", "5%"), "failed the safety gate", 1),
        (("promote", "b:2"), "no rollout of b:2", 1),
        (("rollout", "nope"), "no model named 'nope'", 1),
    ]:
        code, out, err = run(*argv)
        assert (code, out) == (status, ""), (argv, err)
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _rows(registry_url) == 0

    code, out, _ = run("release", "b:2", "--canary", "10%")
    assert code == 0 and "b:2 answers 10.00% of the direct requests (sticky per request_id)" in out
    code, out, _ = run("rollout", "b")
    assert code == 0 and out.startswith("b: b:2 canary 10.00% (sticky per request_id) beside b:1")
    code, out, _ = run("rollout", "b", "--json")
    assert json.loads(out)["rollout"]["candidate"] == {"name": "b", "version": 2}
    code, out, err = run("rollout", "b", "--gateway", "http://127.0.0.1:9")  # nothing listens there
    assert (code, out) == (1, "") and "cannot read http://127.0.0.1:9/metrics" in err
    code, out, err = run("rollout", "b", "--gateway", "file:///etc/passwd")
    assert (code, out) == (2, "") and "not an http(s) URL" in err
    code, out, _ = run("rollback", "b")
    assert code == 0 and "stopped the canary of b:2: b:1 is released" in out
    assert run("release", "b:2", "--shadow")[0] == 0
    code, out, _ = run("promote", "b:2")
    assert code == 0 and "promoted b:2: released, b:1 superseded" in out
    code, out, _ = run("rollback", "b")
    assert code == 0 and "undid the promote of b:2: b:1 is released" in out
    code, out, _ = run("rollout", "b")
    assert "no rollout in progress" in out and "earlier rollouts:" in out and "rolled_back" in out
