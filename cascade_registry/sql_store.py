"""The SQLAlchemy implementation of :class:`~cascade_registry.store.RegistryStore` (SQLite or PostgreSQL).

Each public method is one transaction (see :class:`~cascade_registry.engine.Database`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, select

from cascade_registry.artifacts import ModelRef
from cascade_registry.cascade import downstream_layers
from cascade_registry.engine import Database
from cascade_registry.entities import (
    LIVE_STATUSES,
    AuditEntry,
    ImpactReport,
    LineageInfo,
    WaiverInfo,
)
from cascade_registry.errors import NotFoundError
from cascade_registry.records import as_utc, audit_from_row
from cascade_registry.schema import audit_log, model_versions, waivers
from cascade_registry.sql_capture import CaptureOps
from cascade_registry.sql_console import ConsoleOps
from cascade_registry.sql_consumers import ConsumerOps
from cascade_registry.sql_graph import CascadeRows, load_cascade
from cascade_registry.sql_pins import PinOps, older_pins
from cascade_registry.sql_rollout import RolloutOps
from cascade_registry.sql_trust import TrustOps
from cascade_registry.sql_versions import VersionOps

__all__ = ["SqlRegistryStore"]


class SqlRegistryStore(VersionOps, RolloutOps, PinOps, ConsumerOps, TrustOps, ConsoleOps, CaptureOps):
    """Registry storage on one SQLAlchemy engine."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def open(cls, url: str | None, create: bool = True) -> SqlRegistryStore:
        return cls(Database.connect(url, create=create))

    @property
    def display_url(self) -> str:
        return self.db.display_url

    def close(self) -> None:
        self.db.close()

    def generation(self) -> int:
        return self.db.generation()

    def released_map(self) -> dict[str, int]:
        q = select(model_versions.c.name, model_versions.c.version).where(
            model_versions.c.status == "released"
        )
        return dict(self.db.read(lambda c: c.execute(q).all()))

    def cascade(self) -> CascadeRows:
        return self.db.read(load_cascade)

    # ------------------------------------------------------------------------------ impact
    def impact(self, name: str) -> ImpactReport:
        def op(conn: Connection) -> ImpactReport:
            with _gc_paused():
                return _impact(conn)

        def _impact(conn: Connection) -> ImpactReport:
            cascade = load_cascade(conn)
            if not any(n == name for n, _ in cascade.status):
                raise NotFoundError(f"no model named {name!r} is registered", "see 'lockgate registry list'")
            report = _impact_report(name, cascade, _waivers(conn, name))
            report = report.model_copy(update={"derived": _derived(conn, name),
                                               "stale_reasons": _stale_reasons(conn, name)})
            live = [v for (n, v), (s, _) in cascade.status.items() if n == name and s != "retired"]
            if not live:
                return report
            latest = max(live)
            return report.model_copy(
                update={"latest_version": latest, "older_pins": older_pins(conn, name, latest, cascade)}
            )

        return self.db.read(op)

    def waivers(self, name: str | None = None) -> list[WaiverInfo]:
        return self.db.read(lambda c: _waivers(c, name))

    # ------------------------------------------------------------------------------ audit
    def audit(self, subject: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        q = select(audit_log).order_by(audit_log.c.id)
        if subject is not None:
            # '_' and '%' in a name are literal, not LIKE wildcards
            literal = subject.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            q = q.where(
                (audit_log.c.subject == subject)
                | audit_log.c.subject.like(f"{literal}:%", escape="\\")
                | audit_log.c.subject.like(f"{literal}->%", escape="\\")
                | audit_log.c.subject.like(f"%->{literal}", escape="\\")
            )
        if limit is not None:
            q = q.order_by(None).order_by(audit_log.c.id.desc()).limit(limit)
        rows = self.db.read(lambda c: list(c.execute(q)))
        entries = [audit_from_row(r) for r in rows]
        return sorted(entries, key=lambda e: e.id)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a big acyclic result (tens of thousands of tuples,
    dicts and models): on a 50,000-edge cascade its passes otherwise cost almost half the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _stale_reasons(conn: Connection, name: str) -> dict[int, str]:
    mv = model_versions
    q = select(mv.c.version, mv.c.stale_reason).where(
        mv.c.name == name, mv.c.stale.is_(True), mv.c.status.in_(LIVE_STATUSES)
    )
    return {v: reason or "stale" for v, reason in conn.execute(q)}


def _waivers(conn: Connection, name: str | None) -> list[WaiverInfo]:
    q = (
        select(model_versions.c.name, model_versions.c.version, waivers)
        .join(model_versions, model_versions.c.id == waivers.c.version_id)
        .order_by(waivers.c.id)
    )
    if name is not None:
        q = q.where(model_versions.c.name == name)
    return [
        WaiverInfo(
            ref=ModelRef(name=r.name, version=r.version),
            reason=r.reason,
            actor=r.actor,
            at=as_utc(r.at),
            affected=[a for a in r.affected.split(",") if a],
            owner=r.owner,
        )
        for r in conn.execute(q)
    ]


def _derived(conn: Connection, name: str) -> list[LineageInfo]:
    """The versions initialized from a version of ``name`` (their card's parent), oldest first."""
    mv = model_versions.c
    rows = conn.execute(
        select(mv.name, mv.version, mv.parent_name, mv.parent_version, mv.status)
        .where(mv.parent_name == name).order_by(mv.name, mv.version)
    )
    return [
        LineageInfo(child=ModelRef(name=r.name, version=r.version),
                    parent=ModelRef(name=r.parent_name, version=r.parent_version), status=r.status)
        for r in rows
    ]


def _impact_report(name: str, cascade: CascadeRows, waived: list[WaiverInfo]) -> ImpactReport:
    layers = downstream_layers(cascade.edges, name)
    inside = {name, *(n for n, _ in layers)}
    # tuples while computing, plain dicts validated in one call at the end: on a 50,000-edge cascade this is
    # several times faster than building one pydantic model per pin
    card: dict[str, list[tuple[str, int, int]]] = {}
    for consumer, cver, upstream, uver in cascade.pins:
        if upstream in inside and consumer in inside:
            card.setdefault(consumer, []).append((upstream, cver, uver))
    manual: dict[str, list[tuple[str, str | None]]] = {}
    for consumer, model, versions in cascade.declared:
        if model in inside and consumer in inside:
            manual.setdefault(consumer, []).append((model, versions))
    released: dict[str, int] = {}
    stale: dict[str, list[int]] = {}
    for (n, v), (status, is_stale) in cascade.status.items():
        if status == "released":
            released[n] = v
        if is_stale and status in LIVE_STATUSES:
            stale.setdefault(n, []).append(v)
    entries: list[dict[str, Any]] = []
    kinds = cascade.kinds
    for consumer, depth in layers:
        mine = sorted(card.get(consumer, ()))
        kind = kinds.get(consumer, "model")
        pins: list[dict[str, Any]] = [
            {"upstream": u, "upstream_version": uv, "consumer_version": cv, "source": "card"}
            for u, cv, uv in mine
        ]
        pins += [
            {"upstream": m, "versions": vs, "source": "manual"} for m, vs in sorted(manual.get(consumer, ()))
        ]
        entries.append(
            {
                "consumer": consumer,
                "kind": kind,
                "depth": depth,
                "action": "retrain" if kind == "model" and mine else "revalidate",
                "pins": pins,
                "released_version": released.get(consumer),
                "stale_versions": sorted(stale.get(consumer, ())),
            }
        )
    return ImpactReport.model_validate(
        {"model": name, "released_version": released.get(name), "entries": entries, "waivers": waived}
    )
