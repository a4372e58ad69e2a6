"""Rows <-> entities, and the two things every write does: append to the audit log, record transitions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from cascade_registry.artifacts import ModelCard, ModelRef
from cascade_registry.entities import AuditEntry, ConsumerInfo, ModelVersionInfo, RolloutInfo
from cascade_registry.manifest import Manifest
from cascade_registry.schema import audit_log, cascade_pins, model_versions, rollouts, transitions

__all__ = [
    "active_rollouts",
    "append_audit",
    "append_pin",
    "as_utc",
    "audit_from_row",
    "consumer_from_row",
    "now",
    "rollout_from_row",
    "set_status",
    "version_from_row",
]


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes: they were written in UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def version_from_row(row: Row) -> ModelVersionInfo:
    m = row._mapping
    return ModelVersionInfo(
        ref=ModelRef(name=m["name"], version=m["version"]),
        status=m["status"],
        bundle_path=m["bundle_path"],
        onnx_sha256=m["onnx_sha256"],
        released_at=as_utc(m["released_at"]),
        card=ModelCard.model_validate_json(m["card_json"]),
        registered_at=as_utc(m["registered_at"]),
        registered_by=m["registered_by"],
        released_by=m["released_by"],
        stale=bool(m["stale"]),
        stale_reason=m["stale_reason"],
        manifest=Manifest.model_validate_json(m["manifest_json"]) if m["manifest_json"] else None,
        gate_key_id=m["gate_key_id"],
        parent=None if m.get("parent_name") is None
        else ModelRef(name=m["parent_name"], version=m["parent_version"]),
    )


def rollout_from_row(row: Row) -> RolloutInfo:
    m = row._mapping
    return RolloutInfo(
        model=m["name"],
        live=ModelRef(name=m["name"], version=m["live_version"]),
        candidate=ModelRef(name=m["name"], version=m["candidate_version"]),
        mode=m["mode"],
        share=m["share"],
        sticky=m["sticky"],
        started_at=as_utc(m["started_at"]),
        started_by=m["started_by"],
        ended_at=as_utc(m["ended_at"]),
        ended_by=m["ended_by"],
        outcome=m["outcome"],
    )


def active_rollouts(conn: Connection, name: str | None = None) -> dict[str, Row]:
    """The rollout in progress of each model (of ``name`` only when given), by model name."""
    q = select(rollouts).where(rollouts.c.ended_at.is_(None))
    if name is not None:
        q = q.where(rollouts.c.name == name)
    return {r.name: r for r in conn.execute(q.order_by(rollouts.c.id))}


def consumer_from_row(row: Row, active_keys: int = 0) -> ConsumerInfo:
    m = row._mapping
    return ConsumerInfo(
        name=m["name"],
        kind=m["kind"],
        owner=m["owner"],
        created_at=as_utc(m["created_at"]),
        created_by=m["created_by"],
        revoked_at=as_utc(m["revoked_at"]),
        active_keys=active_keys,
    )


def audit_from_row(row: Row) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        id=m["id"],
        at=as_utc(m["at"]),
        actor=m["actor"],
        action=m["action"],
        subject=m["subject"],
        details=json.loads(m["details"]),
    )


def append_audit(
    conn: Connection, actor: str, action: str, subject: str, details: dict[str, Any] | None = None
) -> None:
    conn.execute(
        insert(audit_log).values(
            at=now(),
            actor=actor,
            action=action,
            subject=subject[:160],
            details=json.dumps(details or {}, sort_keys=True, default=str),
        )
    )


def append_pin(
    conn: Connection,
    consumer: ModelRef,
    upstream: ModelRef,
    source: str,
    actor: str,
    evidence: dict[str, Any] | None = None,
) -> None:
    """Append a ``cascade_pins`` row: from now on the effective pin of ``consumer`` on ``upstream.name``."""
    conn.execute(
        insert(cascade_pins).values(
            consumer=consumer.name,
            consumer_version=consumer.version,
            upstream=upstream.name,
            upstream_version=upstream.version,
            source=source,
            evidence=json.dumps(evidence or {}, sort_keys=True, default=str),
            recorded_at=now(),
            actor=actor,
        )
    )


def set_status(
    conn: Connection,
    version_id: int,
    from_status: str | None,
    to_status: str,
    actor: str,
    reason: str = "",
    **values: Any,
) -> None:
    """Move a version to ``to_status`` and record who, when and why."""
    at = now()
    conn.execute(
        update(model_versions)
        .where(model_versions.c.id == version_id)
        .values(status=to_status, status_at=at, status_by=actor, **values)
    )
    conn.execute(
        insert(transitions).values(
            version_id=version_id,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            at=at,
            reason=reason,
        )
    )
