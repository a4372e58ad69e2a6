"""The traffic plan: who calls which model, with which key, how often, and with what inputs.

A plan is built once before the run (from a traffic file and/or the registry, see
:mod:`loadtests.sources`) and handed to the Locust user classes; it imports no Locust.

Traffic kinds and the answers they must get:

- ``valid``       a declared consumer's key, a declared model, reference rows    -> 200
- ``no_key``      the same body without ``Authorization``                        -> 401
- ``undeclared``  a valid key for a model its consumer is not declared for       -> 403
- ``malformed``   a declared consumer's key with a broken body                   -> 400/413/415/422
"""

from __future__ import annotations

import json
import math
import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "EXPECTED_STATUS",
    "REQUEST_NAMES",
    "ConsumerTraffic",
    "Kind",
    "ModelTarget",
    "Payload",
    "PayloadPool",
    "TrafficPlan",
    "build_pool",
]

Kind = Literal["valid", "no_key", "undeclared", "malformed"]
#: Locust request name per traffic kind (the SLO file refers to these)
REQUEST_NAMES: dict[str, str] = {
    "valid": "/predict",
    "no_key": "/predict (no key)",
    "undeclared": "/predict (undeclared)",
    "malformed": "/predict (malformed)",
}
EXPECTED_STATUS: dict[str, frozenset[int]] = {
    "valid": frozenset({200}),
    "no_key": frozenset({401}),
    "undeclared": frozenset({403}),
    "malformed": frozenset({400, 413, 415, 422}),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelTarget(_Frozen):
    """A served model and the rows its payloads are drawn from."""

    name: str
    version: int | None = Field(None, description="pin a version in every request; None = the released one")
    features: list[str] = Field(min_length=1)
    classes: list[str] = Field(default_factory=list, description="expected class names (checked when given)")
    max_batch: int = Field(ge=1, description="largest batch to send (the model's input-policy maximum)")
    rows: list[list[float | str | None]] = Field(
        min_length=1, description="reference inputs, one list per row (None = missing)"
    )
    named: bool = Field(
        False, description="send rows as named-column instances (categorical or composed models)"
    )

    @model_validator(mode="after")
    def _rows_match_features(self) -> ModelTarget:
        width = len(self.features)
        bad = next((i for i, r in enumerate(self.rows) if len(r) != width), None)
        if bad is not None:
            raise ValueError(f"reference row {bad} has {len(self.rows[bad])} values, expected {width}")
        return self


class ConsumerTraffic(_Frozen):
    name: str
    key: str = Field(repr=False, min_length=1)
    models: list[str] = Field(description="the models this consumer is declared for (valid traffic)")
    weight: int = Field(1, ge=0, description="relative share of users of this consumer")

    @field_validator("key")
    @classmethod
    def _no_whitespace(cls, v: str) -> str:
        if v != v.strip() or any(c.isspace() for c in v):
            raise ValueError("an API key contains no whitespace; check the traffic file")
        return v


class TrafficPlan(_Frozen):
    models: dict[str, ModelTarget] = Field(min_length=1)
    consumers: list[ConsumerTraffic] = Field(min_length=1)
    refused_share: float = Field(0.1, ge=0.0, le=1.0, description="share of requests that must be refused")
    undeclared: list[tuple[str, str]] = Field(
        default_factory=list,
        description="(consumer, model) pairs with a valid key but no declaration: the 403 traffic",
    )
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> TrafficPlan:
        names = {c.name for c in self.consumers}
        for c in self.consumers:
            missing = [m for m in c.models if m not in self.models]
            if missing:
                raise ValueError(f"consumer {c.name!r} targets unknown model(s) {missing}")
        for consumer, model in self.undeclared:
            if consumer not in names or model not in self.models:
                raise ValueError(
                    f"undeclared pair ({consumer!r}, {model!r}) names an unknown consumer or model"
                )
        if not any(c.weight > 0 and c.models for c in self.consumers):
            raise ValueError("no consumer has a positive weight and a declared model to send valid traffic")
        return self

    def consumer(self, name: str) -> ConsumerTraffic:
        return next(c for c in self.consumers if c.name == name)

    @property
    def refused_kinds(self) -> list[str]:
        """The refused kinds this plan can produce (``undeclared`` needs an undeclared pair)."""
        return ["no_key", "malformed"] + (["undeclared"] if self.undeclared else [])


class Payload(_Frozen):
    """One pre-encoded request body."""

    body: bytes
    rows: int
    content_type: str = "application/json"


class PayloadPool(_Frozen):
    """Pre-encoded bodies per model (valid) and broken bodies per model (malformed)."""

    valid: dict[str, list[Payload]]
    malformed: dict[str, list[Payload]]


def _batch_sizes(max_batch: int, n: int, rng: random.Random) -> list[int]:
    """``n`` batch sizes spread log-uniformly over 1..max_batch (always including 1 and max_batch)."""
    sizes = [1, max_batch] if max_batch > 1 else [1]
    while len(sizes) < n:
        sizes.append(max(1, min(max_batch, round(math.exp(rng.uniform(0.0, math.log(max_batch)))))))
    return sizes


def _encode(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _rows_field(target: ModelTarget, rows: list[list[Any]]) -> dict[str, object]:
    if target.named:
        return {"instances": [dict(zip(target.features, r, strict=True)) for r in rows]}
    return {"inputs": rows}


def _malformed_named(target: ModelTarget, row: list[Any]) -> list[Payload]:
    name, first = target.name, target.features[0]
    instance = dict(zip(target.features, row, strict=True))
    wrong = {**instance, first: {"nested": 1}}  # an object where a column value belongs
    return [
        Payload(body=_encode({"model": name, "instances": [{**instance, "no_such_column__": 1.0}]}), rows=1),
        Payload(body=_encode({"model": name, "instances": [wrong]}), rows=1),
        Payload(body=_encode({"model": name, "instances": [list(row)]}), rows=1),  # a list, not an object
        Payload(body=_encode({"model": name}), rows=0),  # no inputs
        Payload(body=_encode({"model": name, "instances": []}), rows=0),  # empty batch
        Payload(body=b'{"model": "' + name.encode() + b'", "instances": [{"a": ', rows=0),  # truncated
        Payload(body=_encode({"model": name, "instances": [instance]}), rows=1, content_type="text/plain"),
    ]


def _malformed(target: ModelTarget, rng: random.Random) -> list[Payload]:
    row = list(rng.choice(target.rows))
    name = target.name
    if target.named:
        return _malformed_named(target, row)
    return [
        Payload(body=_encode({"model": name, "inputs": [row + [0.0]]}), rows=1),  # one value too many
        Payload(body=_encode({"model": name, "inputs": [row[:-1]]}), rows=1),  # one value short
        Payload(body=_encode({"model": name, "inputs": [["not-a-number"] * len(row)]}), rows=1),
        Payload(body=_encode({"model": name}), rows=0),  # no inputs
        Payload(body=_encode({"model": name, "inputs": []}), rows=0),  # empty batch
        Payload(body=b'{"model": "' + name.encode() + b'", "inputs": [[1.0, ', rows=0),  # truncated JSON
        Payload(body=_encode({"model": name, "inputs": [row]}), rows=1, content_type="text/plain"),
    ]


def build_pool(plan: TrafficPlan, bodies_per_model: int = 48) -> PayloadPool:
    """Draw ``bodies_per_model`` valid bodies per model (seeded), and the fixed set of broken ones."""
    valid: dict[str, list[Payload]] = {}
    malformed: dict[str, list[Payload]] = {}
    for name, target in sorted(plan.models.items()):
        rng = random.Random(f"{plan.seed}:{name}")
        pool = []
        for size in _batch_sizes(target.max_batch, bodies_per_model, rng):
            rows = [target.rows[rng.randrange(len(target.rows))] for _ in range(size)]
            body: dict[str, object] = {"model": name, **_rows_field(target, rows)}
            if target.version is not None:
                body["version"] = target.version
            pool.append(Payload(body=_encode(body), rows=size))
        valid[name] = pool
        malformed[name] = _malformed(target, rng)
    return PayloadPool(valid=valid, malformed=malformed)
