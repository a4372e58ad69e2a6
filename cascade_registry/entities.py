"""What the registry returns: frozen pydantic entities that know nothing of storage."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cascade_registry.artifacts import ModelCard, ModelRef
from cascade_registry.manifest import Manifest

__all__ = [
    "LIVE_STATUSES",
    "ModelSummary",
    "STATUSES",
    "AccessDecision",
    "AccessReason",
    "ApiKeyInfo",
    "AuditEntry",
    "CONSOLE_ROLES",
    "ConsoleRole",
    "ConsoleUserInfo",
    "ConsumerInfo",
    "ConsumerKind",
    "DeclarationInfo",
    "ImpactEntry",
    "ImpactReport",
    "LineageInfo",
    "ModelVersionInfo",
    "Pin",
    "PinInfo",
    "PinSource",
    "ROLLOUT_MODES",
    "RolloutInfo",
    "RolloutMode",
    "STICKINESS",
    "Stickiness",
    "ServingEntry",
    "Status",
    "TransitionInfo",
    "TrustedKeyInfo",
    "WaiverInfo",
]

Status = Literal["registered", "gated_passed", "gated_failed", "released", "superseded", "stale", "retired"]
STATUSES: tuple[str, ...] = (
    "registered",
    "gated_passed",
    "gated_failed",
    "released",
    "superseded",
    "stale",
    "retired",
)
#: statuses of a version that is still part of the cascade (not superseded or retired)
LIVE_STATUSES: tuple[str, ...] = ("registered", "gated_passed", "gated_failed", "released", "stale")
ConsumerKind = Literal["service", "model"]
RolloutMode = Literal["shadow", "canary"]
ROLLOUT_MODES: tuple[str, ...] = ("shadow", "canary")
#: what a canary hashes to pick its share: the caller's request id (default) or the declared consumer
Stickiness = Literal["request_id", "consumer"]
STICKINESS: tuple[str, ...] = ("request_id", "consumer")
AccessReason = Literal["ok", "missing_key", "unknown_key", "revoked_key", "undeclared"]


class _Entity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelVersionInfo(_Entity):
    """One registered ``name:version``."""

    ref: ModelRef
    status: Status
    bundle_path: str
    onnx_sha256: str
    released_at: datetime | None
    card: ModelCard
    registered_at: datetime | None = None
    registered_by: str | None = None
    released_by: str | None = None
    stale: bool = Field(False, description="trained on an upstream version older than the released one")
    stale_reason: str | None = None
    manifest: Manifest | None = Field(
        None, description="every file of the bundle with its sha256 at register time (None: before 0002)"
    )
    gate_key_id: str | None = Field(None, description="the trusted key whose signed verdict was recorded")
    parent: ModelRef | None = Field(
        None, description="transfer learning: the version whose weights initialized this one (lineage)"
    )


class TrustedKeyInfo(_Entity):
    """A public key whose signed gate verdicts the registry accepts."""

    key_id: str
    public_key: str
    label: str
    added_at: datetime
    added_by: str
    removed_at: datetime | None = None


class TransitionInfo(_Entity):
    """One status change of a version: who, when, from what to what, and why."""

    ref: ModelRef
    from_status: str | None
    to_status: str
    actor: str
    at: datetime
    reason: str = ""


class ConsumerInfo(_Entity):
    name: str
    kind: ConsumerKind
    owner: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    active_keys: int = 0


class ApiKeyInfo(_Entity):
    """An API key's public half: never the secret."""

    key_id: str
    consumer: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None


class DeclarationInfo(_Entity):
    """Consumer ``consumer`` may call model ``model`` (``versions`` None = any version).

    ``source`` is ``manual`` (declared by a person) or ``card`` (from model ``consumer:consumer_version``'s
    card ``upstream`` list, trained against ``pinned_version``; ``versions`` is ``==`` its effective pin,
    which ``lockgate registry revalidate`` moves).
    """

    consumer: str
    consumer_kind: ConsumerKind
    model: str
    versions: str | None
    source: Literal["manual", "card"]
    consumer_version: int | None = None
    pinned_version: int | None = None
    created_at: datetime
    created_by: str


class AccessDecision(_Entity):
    allowed: bool
    consumer: str | None
    reason: AccessReason
    message: str


class Pin(_Entity):
    """Consumer version ``consumer_version`` is pinned to ``upstream:upstream_version`` (its effective pin:
    the version it was trained against, or a revalidated one)."""

    upstream: str
    upstream_version: int | None = Field(None, description="None for a manual declaration")
    versions: str | None = Field(None, description="the declared range, for manual declarations")
    consumer_version: int | None = None
    source: Literal["manual", "card"]


class ImpactEntry(_Entity):
    consumer: str
    kind: ConsumerKind
    depth: int = Field(description="1 = consumes the model directly")
    action: Literal["retrain", "revalidate"]
    pins: list[Pin] = Field(description="its edges to upstream models inside the impacted cascade")
    released_version: int | None = None
    stale_versions: list[int] = Field(default_factory=list)


class WaiverInfo(_Entity):
    ref: ModelRef
    reason: str
    actor: str
    at: datetime
    affected: list[str]
    owner: str | None = Field(
        None, description="the owner of the affected models who waived (None: before 0004)"
    )


PinSource = Literal["card", "revalidated"]


class PinInfo(_Entity):
    """The effective pin of downstream version ``consumer`` on upstream ``upstream.name``: the version of the
    upstream the gateway composes it with. ``source`` 'card': the version it was trained against;
    'revalidated': moved by ``lockgate registry revalidate`` (``evidence``: the signed metrics before and
    after)."""

    consumer: ModelRef
    upstream: ModelRef
    source: PinSource
    card_version: int = Field(description="the upstream version the consumer's card was trained against")
    evidence: dict[str, Any] = Field(default_factory=dict)
    recorded_at: datetime
    actor: str


class RolloutInfo(_Entity):
    """A candidate version beside the released (live) one. ``shadow``: the gateway also runs the candidate on
    every request to the model, off the response path, and never returns its answer; ``canary``: the
    candidate answers ``share`` of the direct requests, picked by a hash of ``sticky`` (the request id or
    the consumer). Downstream models keep composing the version they are pinned to. ``ended_at`` None: in
    progress; else ``outcome`` says how it ended."""

    model: str
    live: ModelRef
    candidate: ModelRef
    mode: RolloutMode
    share: float = Field(gt=0, le=1, description="fraction of direct requests (1.0 for a shadow)")
    sticky: Stickiness
    started_at: datetime
    started_by: str
    ended_at: datetime | None = None
    ended_by: str | None = None
    outcome: Literal["promoted", "rolled_back", "changed"] | None = None


class ServingEntry(_Entity):
    """One version the gateway loads: ``release`` answers direct callers (the released version of its model);
    ``pin`` is loaded only to be composed into a downstream model that pins it, never answered directly;
    ``shadow`` / ``canary``: the candidate of a rollout in progress (``rollout`` says how it is served).
    ``pins``: the effective pins of this version (upstream name -> version)."""

    info: ModelVersionInfo
    role: Literal["release", "pin", "shadow", "canary"]
    pins: dict[str, int] = Field(default_factory=dict)
    rollout: RolloutInfo | None = None


class LineageInfo(_Entity):
    """A version initialized from another one's weights (``lockgate train --init-from``)."""

    child: ModelRef
    parent: ModelRef
    status: Status


class ImpactReport(_Entity):
    """Everything downstream of ``model``, in topological order (a consumer after all its upstreams)."""

    model: str
    released_version: int | None
    entries: list[ImpactEntry]
    waivers: list[WaiverInfo]
    latest_version: int | None = Field(None, description="the newest version of model not retired")
    older_pins: list[PinInfo] = Field(
        default_factory=list,
        description="live downstream versions whose effective pin on model is older than latest_version: "
        "what releasing it would leave on an older pin",
    )
    derived: list[LineageInfo] = Field(
        default_factory=list,
        description="versions trained from one of model's versions as their parent (transfer learning): "
        "a new parent version changes nothing served, but they are candidates to retrain from it",
    )
    stale_reasons: dict[int, str] = Field(
        default_factory=dict,
        description="live versions of model itself marked stale -> why (an older upstream, drift on live "
        "traffic found by 'lockgate monitor --drift')",
    )


class AuditEntry(_Entity):
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any] = Field(default_factory=dict)


ConsoleRole = Literal["viewer", "operator"]
#: viewer: may log in and read; operator: may also declare, release, waive, retire and revoke keys
CONSOLE_ROLES: tuple[str, ...] = ("viewer", "operator")


class ConsoleUserInfo(_Entity):
    """A person who may log in to the web console (never the password or its hash)."""

    name: str
    role: ConsoleRole
    created_at: datetime
    created_by: str
    disabled_at: datetime | None = None


class ModelSummary(_Entity):
    """One model at a glance: what the console's models page lists (no card is parsed for it)."""

    name: str
    versions: int
    latest_version: int
    latest_status: Status
    released_version: int | None = None
    status: str = Field(description="released, stale, retired, or the latest version's status")
    stale_reason: str | None = None
    consumers: list[str] = Field(default_factory=list)
    last_gate: Literal["passed", "failed"] | None = None
    last_gate_version: int | None = None
