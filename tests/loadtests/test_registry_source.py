"""Traffic plans read from a real registry (SQLite file): declarations, keys, the 403 share."""

from __future__ import annotations

import pytest

from loadtests.errors import PlanError
from loadtests.registry_source import plan_from_registry
from loadtests.sources import TrafficFile
from tests.bundles import open_trusting


@pytest.fixture()
def registry_url(tmp_path, demo_bundle):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with open_trusting(url) as reg:
        reg.register(demo_bundle, actor="test")
        reg.release("demo:1", actor="test")
        for name in ("web", "nokey", "outsider"):
            reg.add_consumer(name, kind="service", owner="tests", actor="test")
        reg.declare("web", "demo", actor="test")
        reg.declare("nokey", "demo", actor="test")
        reg.issue_key("web", actor="test")
    return url


def test_plan_uses_declarations_file_keys_and_reference_inputs(registry_url):
    traffic = TrafficFile.model_validate(
        {"consumers": {"web": {"key": "lg_web", "weight": 3}, "outsider": {"key": "lg_out", "weight": 0}}}
    )
    plan = plan_from_registry(registry_url, traffic, max_batch=16, seed=5)
    assert sorted(c.name for c in plan.consumers) == ["outsider", "web"]  # 'nokey' has no key: no traffic
    web = plan.consumer("web")
    assert (web.key, web.weight, web.models) == ("lg_web", 3, ["demo"])
    assert plan.undeclared == [("outsider", "demo")]
    target = plan.models["demo"]
    assert target.max_batch == 16 and len(target.features) == 30 and len(target.rows) > 10
    assert target.classes and plan.seed == 5


def test_rotate_keys_gives_each_declared_consumer_a_working_key(registry_url):
    plan = plan_from_registry(registry_url, None, rotate_keys=True)
    keys = {c.name: c.key for c in plan.consumers}
    assert sorted(keys) == ["nokey", "web"]
    with open_trusting(registry_url) as reg:
        for name, key in keys.items():
            decision = reg.check_access(key, "demo")
            assert decision.allowed and decision.consumer == name


def test_no_key_at_all_is_a_plan_error(registry_url):
    with pytest.raises(PlanError, match="no declared consumer with a key"):
        plan_from_registry(registry_url, None)
