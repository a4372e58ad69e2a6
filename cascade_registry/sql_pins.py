"""Cascade pins in SQL: the effective pin of each downstream version, recording a revalidated one, and the
serving plan (every version the gateway must load, with the pins it composes them with).

``cascade_pins`` is append-only: registering a downstream version writes its card pins (source 'card');
``record_pin`` appends a 'revalidated' row, which becomes the effective pin, moves the model consumer's
declaration to that version (the gateway composes only along a declared edge) and clears the version's
stale flag once none of its effective pins is older than the released upstream.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from sqlalchemy import Connection, Row, select, update

from cascade_registry.artifacts import ModelRef
from cascade_registry.engine import Database
from cascade_registry.entities import LIVE_STATUSES, PinInfo, ServingEntry
from cascade_registry.errors import ConflictError
from cascade_registry.records import (
    active_rollouts,
    append_audit,
    append_pin,
    as_utc,
    rollout_from_row,
    set_status,
    version_from_row,
)
from cascade_registry.schema import cascade_pins, consumers, declarations, model_versions, transitions
from cascade_registry.sql_graph import CascadeRows, load_cascade
from cascade_registry.sql_versions import version_row

__all__ = ["PinOps", "older_pins"]

mv = model_versions
cp = cascade_pins
#: an upstream version a released downstream version may be pinned to (it is, or was, released)
_LIVE_PIN = ("released", "superseded")
#: ... and one a downstream version not released yet may be pinned to (its release then needs the rule above)
_GATED_PIN = ("gated_passed", *_LIVE_PIN)


def _pin_rows(conn: Connection, ref: ModelRef) -> list[Row]:
    q = select(cp).where(cp.c.consumer == ref.name, cp.c.consumer_version == ref.version).order_by(cp.c.id)
    return list(conn.execute(q))


def older_pins(conn: Connection, name: str, latest: int, cascade: CascadeRows) -> list[PinInfo]:
    """Effective pins on ``name`` of live downstream versions that are older than ``latest``."""
    rows = conn.execute(select(cp).where(cp.c.upstream == name).order_by(cp.c.id)).all()
    by_consumer: dict[tuple[str, int], list[Row]] = {}
    for r in rows:
        by_consumer.setdefault((r.consumer, r.consumer_version), []).append(r)
    out = []
    for (c, cv), mine in sorted(by_consumer.items()):
        if cascade.status.get((c, cv), ("", False))[0] not in LIVE_STATUSES:
            continue
        out += [p for p in _effective(ModelRef(name=c, version=cv), mine) if p.upstream.version < latest]
    return out


def _effective(ref: ModelRef, rows: list[Row]) -> list[PinInfo]:
    card: dict[str, int] = {}
    newest: dict[str, Row] = {}
    for r in rows:
        if r.source == "card":
            card.setdefault(r.upstream, r.upstream_version)
        newest[r.upstream] = r
    return [
        PinInfo(
            consumer=ref,
            upstream=ModelRef(name=up, version=r.upstream_version),
            source=r.source,
            card_version=card.get(up, r.upstream_version),
            evidence=json.loads(r.evidence),
            recorded_at=as_utc(r.recorded_at),
            actor=r.actor,
        )
        for up, r in sorted(newest.items())
    ]


def _stale_reason(ref: ModelRef, cascade: CascadeRows) -> str | None:
    """Why ``ref`` is stale judged by its effective pins now, or None."""
    released = {n: v for (n, v), (s, _) in cascade.status.items() if s == "released"}
    for c, cv, up, uv in sorted(cascade.pins):
        if (c, cv) != (ref.name, ref.version):
            continue
        if cascade.status.get((up, uv), ("", False))[1]:
            return f"pinned to {up}:{uv}, which is stale"
        if released.get(up, 0) > uv:
            return f"pinned to {up}:{uv}; {up}:{released[up]} is released"
    return None


class PinOps:
    """Mixed into :class:`~cascade_registry.sql_store.SqlRegistryStore`."""

    db: Database

    def pins(self, ref: ModelRef) -> list[PinInfo]:
        def op(conn: Connection) -> list[PinInfo]:
            version_row(conn, ref)
            return _effective(ref, _pin_rows(conn, ref))

        return self.db.read(op)

    def record_pin(
        self,
        consumer: ModelRef,
        upstream: ModelRef,
        sha256: dict[str, str],
        evidence: dict[str, Any],
        actor: str,
    ) -> PinInfo:
        """Append a revalidated pin of ``consumer`` on ``upstream``; ``sha256`` holds the model.onnx digests
        (by ref text) the evidence was made for, which must be the registered ones."""

        def op(conn: Connection) -> PinInfo:
            crow, urow = version_row(conn, consumer), version_row(conn, upstream)
            for row, ref in ((crow, consumer), (urow, upstream)):
                if row.onnx_sha256 != sha256.get(str(ref)):
                    raise ConflictError(
                        f"the revalidation evidence is for another {ref} (sha256 "
                        f"{str(sha256.get(str(ref)))[:12]}…, registered {row.onnx_sha256[:12]}…)",
                        "revalidate the registered versions again",
                    )
            current = {p.upstream.name: p for p in _effective(consumer, _pin_rows(conn, consumer))}
            self._check_pinnable(crow, urow, consumer, upstream, current)
            append_pin(conn, consumer, upstream, "revalidated", actor, evidence)
            cid = conn.execute(select(consumers.c.id).where(consumers.c.name == consumer.name)).scalar_one()
            conn.execute(
                update(declarations)
                .where(
                    declarations.c.consumer_id == cid,
                    declarations.c.model_name == upstream.name,
                    declarations.c.consumer_version == consumer.version,
                )
                .values(versions=f"=={upstream.version}")
            )
            self._refresh_stale(conn, crow, consumer, actor)
            before = current[upstream.name].upstream
            append_audit(
                conn,
                actor,
                "pin",
                f"{consumer}->{upstream.name}",
                {"from": str(before), "to": str(upstream), "key_id": evidence.get("key_id")},
            )
            return next(p for p in _effective(consumer, _pin_rows(conn, consumer)) if p.upstream == upstream)

        return self.db.write(op)

    @staticmethod
    def _check_pinnable(
        crow: Row, urow: Row, consumer: ModelRef, upstream: ModelRef, current: dict[str, PinInfo]
    ) -> None:
        if upstream.name not in current:
            raise ConflictError(
                f"{consumer} was not trained on {upstream.name} (its card's upstreams: "
                f"{', '.join(sorted(current)) or 'none'})",
                "only an upstream of the card can be re-pinned; retrain to add another",
            )
        if crow.status == "retired":
            raise ConflictError(f"{consumer} is retired", "revalidate a live version")
        allowed = _LIVE_PIN if crow.status == "released" else _GATED_PIN
        if urow.status not in allowed:
            raise ConflictError(
                f"{upstream} is {urow.status}: released {consumer} may only be pinned to a version that is "
                "or was released"
                if crow.status == "released"
                else f"{upstream} is {urow.status}",
                f"release {upstream} first" if urow.status == "gated_passed" else "pin a gated version",
            )
        if current[upstream.name].upstream == upstream:
            raise ConflictError(f"{consumer} is already pinned to {upstream}")

    @staticmethod
    def _refresh_stale(conn: Connection, row: Row, ref: ModelRef, actor: str) -> None:
        reason = _stale_reason(ref, load_cascade(conn))
        if reason is not None:
            if row.stale:
                conn.execute(update(mv).where(mv.c.id == row.id).values(stale_reason=reason))
            return
        if not row.stale:
            return
        conn.execute(update(mv).where(mv.c.id == row.id).values(stale=False, stale_reason=None))
        if row.status == "stale":
            back = conn.execute(
                select(transitions.c.from_status)
                .where(transitions.c.version_id == row.id, transitions.c.to_status == "stale")
                .order_by(transitions.c.id.desc())
                .limit(1)
            ).scalar()
            set_status(conn, row.id, "stale", back or "registered", actor, "revalidated: no older pin left")
        append_audit(conn, actor, "fresh", str(ref), {"status": row.status})

    def serving_plan(self) -> list[ServingEntry]:
        """Every released version (role 'release'), the candidate of each rollout in progress (role 'shadow'
        or 'canary', with its rollout) and, transitively, every version one of those is pinned to that is not
        itself released (role 'pin'; only ever was-released versions), with their pins."""

        def op(conn: Connection) -> list[ServingEntry]:
            cascade = load_cascade(conn)
            pins: dict[tuple[str, int], dict[str, int]] = {}
            for c, cv, up, uv in cascade.pins:
                pins.setdefault((c, cv), {})[up] = uv
            roles = {k: "release" for k, (s, _) in cascade.status.items() if s == "released"}
            active = {(n, r.candidate_version): r for n, r in active_rollouts(conn).items()}
            roles.update({k: r.mode for k, r in active.items()})
            queue = deque(sorted(roles))
            while queue:
                for up, uv in sorted(pins.get(queue.popleft(), {}).items()):
                    key = (up, uv)
                    if key not in roles and cascade.status.get(key, ("", False))[0] in _LIVE_PIN:
                        roles[key] = "pin"
                        queue.append(key)
            served = conn.execute(select(mv).where(mv.c.status.in_(_LIVE_PIN)))
            rows = {(r.name, r.version): r for r in served}
            for name, version in active:
                rows[(name, version)] = version_row(conn, ModelRef(name=name, version=version))
            return [
                ServingEntry(
                    info=version_from_row(r),
                    role=roles[(r.name, r.version)],
                    pins=pins.get((r.name, r.version), {}),
                    rollout=rollout_from_row(active[key]) if key in active else None,
                )
                for key, r in sorted(rows.items())
                if key in roles
            ]

        return self.db.read(op)
