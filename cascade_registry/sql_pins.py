"""Effective cascade pins and the gateway's serving plan, on the declarations table.

The effective pin of ``b:1`` on ``a`` is its card declaration's ``pinned_version``: written from the card
at registration, moved by :meth:`PinOps.record_pin` (after a revalidation) in one transaction with an
audit entry holding the evidence.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from cascade_registry.artifacts import ModelRef
from cascade_registry.engine import Database
from cascade_registry.entities import ModelVersionInfo, PinInfo, ServingEntry
from cascade_registry.errors import NotFoundError
from cascade_registry.records import append_audit, as_utc, now, version_from_row
from cascade_registry.schema import consumers, declarations, model_versions

__all__ = ["PinOps"]

mv = model_versions


def _card_rows(conn: Connection, consumer: str, version: int) -> list[Any]:
    q = (
        select(declarations)
        .join(consumers, consumers.c.id == declarations.c.consumer_id)
        .where(
            consumers.c.name == consumer,
            declarations.c.source == "card",
            declarations.c.consumer_version == version,
        )
        .order_by(declarations.c.model_name)
    )
    return list(conn.execute(q))


def _pin(ref: ModelRef, row: Any, trained_on: int | None) -> PinInfo:
    return PinInfo(
        consumer=ref.name,
        consumer_version=ref.version,
        upstream=row.model_name,
        upstream_version=row.pinned_version,
        source="card" if row.pinned_version == trained_on else "revalidated",
        recorded_at=as_utc(row.created_at),
        actor=row.created_by,
    )


def _pins(conn: Connection, info: ModelVersionInfo) -> list[PinInfo]:
    trained = {u.name: u.version for u in info.card.upstream}
    return [_pin(info.ref, r, trained.get(r.model_name)) for r in _card_rows(conn, *_key(info.ref))]


def _key(ref: ModelRef) -> tuple[str, int]:
    return ref.name, ref.version


def _info(conn: Connection, name: str, version: int) -> ModelVersionInfo | None:
    row = conn.execute(select(mv).where(mv.c.name == name, mv.c.version == version)).first()
    return None if row is None else version_from_row(row)


class PinOps:
    """Mixed into :class:`~cascade_registry.sql_store.SqlRegistryStore`."""

    db: Database

    def pins(self, ref: ModelRef) -> list[PinInfo]:
        def op(conn: Connection) -> list[PinInfo]:
            info = _info(conn, ref.name, ref.version)
            if info is None:
                raise NotFoundError(f"{ref} is not registered", "see 'lockgate registry list'")
            return _pins(conn, info)

        return self.db.read(op)

    def record_pin(
        self, consumer: ModelRef, upstream: ModelRef, evidence: dict[str, Any], actor: str
    ) -> PinInfo:
        def op(conn: Connection) -> PinInfo:
            info = _info(conn, consumer.name, consumer.version)
            if info is None or _info(conn, upstream.name, upstream.version) is None:
                missing = consumer if info is None else upstream
                raise NotFoundError(f"{missing} is not registered", "see 'lockgate registry list'")
            row = next((r for r in _card_rows(conn, *_key(consumer)) if r.model_name == upstream.name), None)
            if row is None:
                raise NotFoundError(
                    f"{consumer} does not consume {upstream.name} (its card names no such upstream)",
                    f"train a new version of {consumer.name} with --upstream {upstream}",
                )
            at = now()
            conn.execute(
                update(declarations)
                .where(declarations.c.id == row.id)
                .values(
                    versions=f"=={upstream.version}",
                    pinned_version=upstream.version,
                    created_at=at,
                    created_by=actor,
                )
            )
            append_audit(conn, actor, "pin", str(consumer), {"upstream": str(upstream), "evidence": evidence})
            trained = {u.name: u.version for u in info.card.upstream}.get(upstream.name)
            source = "card" if upstream.version == trained else "revalidated"
            return PinInfo(
                consumer=consumer.name,
                consumer_version=consumer.version,
                upstream=upstream.name,
                upstream_version=upstream.version,
                source=source,
                evidence=evidence,
                recorded_at=at,
                actor=actor,
            )

        return self.db.write(op)

    def serving_plan(self) -> list[ServingEntry]:
        def op(conn: Connection) -> list[ServingEntry]:
            rows = conn.execute(select(mv).where(mv.c.status == "released").order_by(mv.c.name)).all()
            queue = [(version_from_row(r), "release") for r in rows]
            plan: dict[tuple[str, int], ServingEntry] = {}
            while queue:
                info, role = queue.pop(0)
                if _key(info.ref) in plan:
                    continue
                pins = {p.upstream: p.upstream_version for p in _pins(conn, info)}
                plan[_key(info.ref)] = ServingEntry(info=info, role=role, pins=pins)  # type: ignore[arg-type]
                for name, version in pins.items():
                    up = _info(conn, name, version)
                    if up is not None and up.status != "retired" and (name, version) not in plan:
                        queue.append((up, "pin"))
            return list(plan.values())

        return self.db.read(op)
