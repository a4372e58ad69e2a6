"""A traffic plan from the registry: released models, declared consumers, and their keys.

The registry gives the released version of every model (and its bundle, for reference inputs) and
who is declared for what. It never gives keys back (only hashes are stored), so keys come from the
traffic file, or — on a demo registry only — from ``rotate_keys=True``, which rotates the key of each
declared consumer that has none in the file (their previous keys stop working).

Any consumer with a key that is *not* declared for a released model makes the must-be-403 traffic.
"""

from __future__ import annotations

import logging

from cascade_registry import Registry, RegistryError
from cascade_registry.settings import locate_registry
from loadtests.errors import PlanError
from loadtests.plan import ConsumerTraffic, ModelTarget, TrafficPlan
from loadtests.sources import TrafficFile, make_plan, target_from_bundle

__all__ = ["plan_from_registry"]

log = logging.getLogger(__name__)


def _declared(reg: Registry, consumers: list[str], models: list[str]) -> dict[str, set[str]]:
    """consumer -> released models the registry lets it call (range, revocation and cascade rules)."""
    return {c: {m for m in models if reg.check_consumer(c, m).allowed} for c in consumers}


def plan_from_registry(
    url: str | None,
    traffic: TrafficFile | None,
    rotate_keys: bool = False,
    refused_share: float | None = None,
    seed: int | None = None,
    max_batch: int | None = None,
) -> TrafficPlan:
    """Build the plan from the registry at ``url`` (None = the default SQLite file); it must exist."""
    location = locate_registry(url)
    try:
        reg = Registry.open(location.url, create=False)
    except RegistryError as e:
        raise PlanError(f"cannot open the registry {location.describe()}: {e}") from None
    try:
        return _plan(reg, traffic, rotate_keys, refused_share, seed, max_batch)
    except RegistryError as e:
        raise PlanError(f"registry: {e}") from None
    finally:
        reg.close()


def _plan(
    reg: Registry,
    traffic: TrafficFile | None,
    rotate_keys: bool,
    refused_share: float | None,
    seed: int | None,
    max_batch: int | None,
) -> TrafficPlan:
    released = reg.released()
    if not released:
        raise PlanError(
            "the registry has no released model to load-test", "release one with 'lockgate registry'"
        )
    file_models = traffic.models if traffic else {}
    targets: dict[str, ModelTarget] = {}
    for info in released:
        entry = file_models.get(info.ref.name)
        cap = max_batch or (entry.max_batch if entry else None)
        targets[info.ref.name] = target_from_bundle(info.bundle_path, card=info.card, max_batch=cap)
    file_consumers = traffic.consumers if traffic else {}
    live = {c.name for c in reg.consumers() if c.revoked_at is None}
    declared = _declared(reg, sorted(live), sorted(targets))

    consumers: list[ConsumerTraffic] = []
    missing: list[str] = []
    for name in sorted(live):
        entry = file_consumers.get(name)
        models = sorted(declared.get(name, set()))
        key = entry.key if entry else None
        if key is None and models and rotate_keys:
            active = [k for k in reg.keys(name) if k.revoked_at is None]
            key = (reg.rotate_key if active else reg.issue_key)(name, actor="loadtest")
        if key is None:
            if models:
                missing.append(name)
            continue
        consumers.append(
            ConsumerTraffic(name=name, key=key, models=models, weight=entry.weight if entry else 1)
        )
    if missing:
        log.warning(
            "no key for declared consumer(s) %s: they send no traffic (add them to --traffic)", missing
        )

    undeclared = sorted(
        {(c.name, m) for c in consumers for m in targets if m not in c.models}
        | {(n, m) for n, e in file_consumers.items() for m in e.undeclared if n in live and m in targets}
    )
    if not any(c.models and c.weight > 0 for c in consumers):
        raise PlanError(
            "no declared consumer with a key: nothing can send valid traffic",
            "list consumers and keys in --traffic FILE (or --rotate-keys on a demo registry)",
        )
    return make_plan(targets, consumers, undeclared, traffic, refused_share, seed)
