"""``lockgate train --retrain-from b:1``: the options of a registered model's run, against new upstreams.

The card records the run's options (``card.train_options``: family, hyperparameter search, seed,
calibration, splits, table options, upstreams). Retraining replays them with each upstream moved to the
version given by ``--upstream`` or, by default, the one released now; options given on the command line
win. The data file must be given again (the card holds its digest, not its rows); the new card's digest
says whether the rows were the same. The new version defaults to the newest registered one + 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cascade_registry.artifacts import ModelCard, ModelRef
from cascade_registry.errors import NotFoundError, RegistryUnavailableError
from cascade_registry.registry import Registry
from training.datasets import BUILTIN_DATASETS
from training.errors import ConfigError, DataError

__all__ = ["RetrainPlan", "plan_retrain"]


@dataclass(frozen=True)
class RetrainPlan:
    """What ``--retrain-from`` resolved: the option values to train with and the card retrained from."""

    source: ModelCard
    values: dict[str, Any]
    moved: dict[str, tuple[int, int]]  # upstream name -> (pinned version, version trained against now)


def plan_retrain(ref: ModelRef, given: Mapping[str, Any], registry_url: str) -> RetrainPlan:
    """The plan for retraining ``ref`` with the flags ``given`` (option name -> value) overriding its card.

    Raises :class:`ConfigError` / :class:`DataError` saying what is missing and how to fix it."""
    try:
        with Registry.open(registry_url, create=False) as registry:
            return _plan(registry, ref, dict(given))
    except RegistryUnavailableError as e:
        raise ConfigError(f"--retrain-from needs the registry holding {ref}: {e}",
                          "pass --registry-url (or set LOCKGATE_REGISTRY_URL)") from None


def _plan(registry: Registry, ref: ModelRef, given: dict[str, Any]) -> RetrainPlan:
    try:
        card = registry.get(ref).card
    except NotFoundError:
        raise ConfigError(f"--retrain-from {ref}: not registered in the registry at {registry.url}",
                          "name a registered NAME:VERSION ('lockgate registry list')") from None
    recorded = dict(card.train_options)
    if not recorded:
        raise ConfigError(
            f"--retrain-from {ref}: its card records no training options (it was trained before "
            "'lockgate train' recorded them)",
            "train the new version with explicit options instead",
        )
    if "data" not in given and recorded.get("data") not in BUILTIN_DATASETS:
        raise ConfigError(
            f"--retrain-from {ref} needs --data again: the card holds the digest of its table "
            f"(sha256 {card.dataset.sha256[:12]}…), not the rows",
            f"pass --data PATH (the file {ref} was trained on, or its new version)",
        )
    upstream, moved = _upstream_versions(registry, card, given.pop("upstream", ()))
    versions = [v.ref.version for v in registry.versions(ref.name)]
    values = recorded | given
    values["upstream"] = tuple(upstream)
    values["upstream_output"] = tuple(given.get("upstream_output", [u.output for u in card.upstream]))
    values["version"] = given.get("version", max(versions, default=ref.version) + 1)
    return RetrainPlan(source=card, values=values, moved=moved)


def _upstream_versions(registry: Registry, card: ModelCard, given: tuple[str, ...]
                       ) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """Each upstream of ``card`` at the version named by ``given`` (``NAME:VERSION`` texts) or, by default,
    the released one."""
    chosen = {}
    for text in given:
        try:
            chosen[ModelRef.parse(text).name] = ModelRef.parse(text).version
        except ValueError as e:
            raise ConfigError(f"--upstream {text!r}: {e}",
                              "write NAME:VERSION, e.g. --upstream a:2") from None
    pins = {u.name: u.version for u in card.upstream}
    unknown = sorted(set(chosen) - set(pins))
    if unknown:
        raise ConfigError(
            f"--upstream {', '.join(unknown)}: {card.ref} does not consume "
            f"{'it' if len(unknown) == 1 else 'them'} (its upstreams: {', '.join(pins) or 'none'})",
            "with --retrain-from, --upstream only moves one of the model's own upstreams to another version",
        )
    refs, moved = [], {}
    for name, pinned in pins.items():
        if name not in chosen:
            released = [v.ref.version for v in registry.versions(name) if v.status == "released"]
            if not released:
                raise DataError(f"upstream {name} of {card.ref} has no released version",
                                f"release one, or name it: --upstream {name}:VERSION")
            chosen[name] = released[-1]
        refs.append(f"{name}:{chosen[name]}")
        moved[name] = (pinned, chosen[name])
    return refs, moved
