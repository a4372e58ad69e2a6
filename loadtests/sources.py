"""Where a traffic plan comes from: a traffic file (TOML), bundle directories, and the registry.

A traffic file names the consumers (key, weight, declared models) and, optionally, where each model's
bundle lives::

    refused_share = 0.1

    [models.demo]
    bundle = "out/demo-1"          # card.json + reference.npz; not needed with --registry-url

    [consumers.billing]
    key = "lg_..."
    weight = 3
    models = ["demo"]              # not needed with --registry-url (read from the declarations)

    [consumers.intruder]
    key = "lg_..."
    weight = 0                     # sends no traffic of its own ...
    undeclared = ["demo"]          # ... but its key is used for the must-be-403 share

Keys are secrets: the registry stores only their hashes, so they always come from the file (or from
``--rotate-keys`` on a demo registry, see :func:`plan_from_registry`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cascade_registry.artifacts import REFERENCE_FILE, InvalidBundleError, ModelBundle, ModelCard
from loadtests.errors import PlanError
from loadtests.plan import ConsumerTraffic, ModelTarget, TrafficPlan

__all__ = [
    "ConsumerEntry",
    "ModelEntry",
    "TrafficFile",
    "load_traffic_file",
    "make_plan",
    "plan_from_file",
    "target_from_bundle",
]

#: reference rows kept per model (payloads are drawn from these)
MAX_REFERENCE_ROWS = 512


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelEntry(_Strict):
    bundle: Path | None = Field(None, description="bundle directory (card.json + reference.npz)")
    version: int | None = Field(None, ge=1, description="pin this version in requests")
    max_batch: int | None = Field(None, ge=1, description="cap on rows per request")


class ConsumerEntry(_Strict):
    key: str = Field(min_length=1, repr=False)
    weight: int = Field(1, ge=0)
    models: list[str] | None = None
    undeclared: list[str] = Field(default_factory=list)


class TrafficFile(_Strict):
    refused_share: float | None = Field(None, ge=0.0, le=1.0)
    seed: int | None = None
    models: dict[str, ModelEntry] = Field(default_factory=dict)
    consumers: dict[str, ConsumerEntry] = Field(min_length=1)


def load_traffic_file(path: Path | str) -> TrafficFile:
    """Parse and validate a traffic file; raise :class:`PlanError` saying what is wrong."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(
            f"traffic file {path} does not exist", "pass an existing TOML file to --traffic"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise PlanError(f"traffic file {path} cannot be read: {e}", "fix the TOML syntax") from None
    try:
        parsed = TrafficFile.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in e.errors()[:5]
        )
        raise PlanError(f"traffic file {path}: {problems}", "see docs/loadtests.md, 'Traffic file'") from None
    # relative bundle paths are relative to the file
    models = {
        name: m.model_copy(update={"bundle": path.parent / m.bundle})
        if m.bundle and not m.bundle.is_absolute()
        else m
        for name, m in parsed.models.items()
    }
    return parsed.model_copy(update={"models": models})


def target_from_bundle(
    bundle: Path | str,
    card: ModelCard | None = None,
    version: int | None = None,
    max_batch: int | None = None,
) -> ModelTarget:
    """A :class:`ModelTarget` from a bundle's card and ``reference.npz`` inputs.

    An all-numeric model takes positional rows; a model with categorical columns, or one composed from
    an upstream model (its upstream-fed features are computed by the gateway, never sent), takes named
    instances of its raw columns, as a consumer would send them.
    """
    bundle = Path(bundle)
    try:
        card = card or ModelBundle.read_card(bundle)
    except InvalidBundleError as e:
        raise PlanError(str(e), "point the traffic file's [models.NAME] bundle at a trained bundle") from None
    raw = [f for f in card.features if f.upstream is None]
    rows = _reference_rows(bundle, card, raw)
    named = len(raw) != len(card.features) or any(f.kind != "numeric" for f in raw)
    policy_max = card.input_policy.max_batch_rows
    return ModelTarget(
        name=card.ref.name,
        version=version,
        features=[f.name for f in raw],
        classes=list(card.classes),
        max_batch=min(policy_max, max_batch) if max_batch else policy_max,
        rows=rows,
        named=named,
    )


def _reference_columns(bundle: Path, card: ModelCard) -> tuple[np.ndarray, np.ndarray]:
    """The reference test rows: numeric float64 [n, n_numeric] and categorical str [n, n_categorical]."""
    n_numeric = sum(f.kind == "numeric" for f in card.features)
    try:
        with np.load(bundle / REFERENCE_FILE, allow_pickle=False) as ref:
            numeric = np.asarray(ref["inputs"], dtype=np.float64)
            cat = np.asarray(ref["categorical_inputs"]) if "categorical_inputs" in ref.files else None
    except (OSError, KeyError, ValueError) as e:
        raise PlanError(
            f"{bundle / REFERENCE_FILE} has no readable 'inputs' array: {e}", "re-train the bundle"
        ) from None
    n_cat = len(card.features) - n_numeric
    cat = np.empty((numeric.shape[0] if numeric.ndim == 2 else 0, 0), dtype=str) if cat is None else cat
    if numeric.ndim != 2 or numeric.shape[0] == 0 or numeric.shape[1] != n_numeric or cat.shape != (
        numeric.shape[0], n_cat
    ):
        raise PlanError(
            f"{bundle / REFERENCE_FILE} inputs have shape {numeric.shape} (categorical {cat.shape}), "
            f"expected [n>0, {n_numeric}] (and [n, {n_cat}])",
            "re-train the bundle with this lockgate version",
        )
    return numeric, cat.astype(str)


def _reference_rows(bundle: Path, card: ModelCard, raw: list[Any]) -> list[list[float | str | None]]:
    """Reference rows over the raw columns, missing values as ``None`` where the card allows them; rows
    with a gap the card refuses are left out."""
    numeric, cat = _reference_columns(bundle, card)
    where: dict[str, tuple[np.ndarray, int]] = {}
    counts = {"numeric": 0, "other": 0}
    for f in card.features:
        slot = "numeric" if f.kind == "numeric" else "other"
        where[f.name] = (numeric if slot == "numeric" else cat, counts[slot])
        counts[slot] += 1
    rows: list[list[float | str | None]] = []
    for i in range(numeric.shape[0]):
        row: list[float | str | None] = []
        for f in raw:
            array, j = where[f.name]
            value = array[i, j]
            gap = value == "" if array is cat else not np.isfinite(value)
            if gap and f.missing == "error":
                break
            row.append(None if gap else (str(value) if array is cat else float(value)))
        else:
            rows.append(row)
        if len(rows) == MAX_REFERENCE_ROWS:
            break
    if not rows:
        raise PlanError(f"{bundle / REFERENCE_FILE} has no row the model accepts to send")
    return rows


def _undeclared_pairs(consumers: dict[str, ConsumerEntry], models: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for name, c in sorted(consumers.items()):
        for model in c.undeclared:
            if model not in models:
                raise PlanError(
                    f"consumer {name!r} lists undeclared model {model!r}, which is not in the plan"
                )
            pairs.append((name, model))
    return pairs


def plan_from_file(
    traffic: TrafficFile,
    refused_share: float | None = None,
    seed: int | None = None,
    max_batch: int | None = None,
) -> TrafficPlan:
    """A plan from a traffic file alone: every model needs ``bundle`` and every consumer ``models``."""
    targets = {}
    for name, m in sorted(traffic.models.items()):
        if m.bundle is None:
            raise PlanError(f"model {name!r} has no bundle path", 'add bundle = "DIR" or use --registry-url')
        target = target_from_bundle(m.bundle, version=m.version, max_batch=max_batch or m.max_batch)
        if target.name != name:
            raise PlanError(f"[models.{name}] points at a bundle of model {target.name!r}")
        targets[name] = target
    consumers = []
    for name, c in sorted(traffic.consumers.items()):
        if c.models is None:
            raise PlanError(f"consumer {name!r} lists no models", "add models = [...] or use --registry-url")
        consumers.append(ConsumerTraffic(name=name, key=c.key, models=c.models, weight=c.weight))
    return make_plan(
        targets, consumers, _undeclared_pairs(traffic.consumers, targets), traffic, refused_share, seed
    )


def make_plan(
    targets: dict[str, ModelTarget],
    consumers: list[ConsumerTraffic],
    undeclared: list[tuple[str, str]],
    traffic: TrafficFile | None,
    refused_share: float | None,
    seed: int | None,
) -> TrafficPlan:
    share = refused_share if refused_share is not None else (traffic.refused_share if traffic else None)
    chosen_seed = seed if seed is not None else (traffic.seed if traffic else None)
    try:
        return TrafficPlan(
            models=targets,
            consumers=consumers,
            undeclared=undeclared,
            refused_share=0.1 if share is None else share,
            seed=chosen_seed or 0,
        )
    except ValidationError as e:
        problems = "; ".join(err["msg"] for err in e.errors()[:3])
        raise PlanError(
            f"no usable traffic plan: {problems}", "check the consumers' models and weights"
        ) from None
