"""Production feedback in SQL: captured predictions, feedback labels, drift checks.

Captures and labels are appended without bumping the registry generation (:meth:`Database.append`): they
do not change what is served, and a bump would make every gateway reload its catalog. A drift check that
marks a version stale is an ordinary write (the gateways notice it and ``/readyz`` shows it). A repeated
capture (same request id, row and role) is ignored; a repeated label (same request id, row and consumer)
replaces the earlier one: the last word of the consumer counts.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Insert, and_, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cascade_registry.artifacts import ModelRef
from cascade_registry.capture import (
    CapturedPrediction,
    DriftCheck,
    FeedbackLabel,
    LabelledPrediction,
    PrunedFeedback,
)
from cascade_registry.engine import Database
from cascade_registry.records import append_audit, as_utc
from cascade_registry.schema import captured_predictions, drift_checks, feedback_labels, model_versions
from cascade_registry.sql_versions import version_row

__all__ = ["CaptureOps"]

cp, fl = captured_predictions, feedback_labels


def _insert(db: Database, table: Any) -> Any:
    return (postgresql.insert if db.dialect == "postgresql" else sqlite.insert)(table)


def _capture_values(row: CapturedPrediction) -> dict[str, Any]:
    return {
        "request_id": row.request_id,
        "row": row.row,
        "model": row.model,
        "version": row.version,
        "consumer": row.consumer,
        "role": row.role,
        "at": row.at,
        "inputs_json": orjson.dumps(row.inputs).decode(),
        "label": row.label,
        "probabilities_json": orjson.dumps(row.probabilities).decode(),
        "latency_ms": row.latency_ms,
    }


def _capture_from(m: Any) -> CapturedPrediction:
    return CapturedPrediction.model_construct(
        request_id=m["request_id"],
        row=m["row"],
        model=m["model"],
        version=m["version"],
        consumer=m["consumer"],
        role=m["role"],
        at=as_utc(m["at"]),
        inputs=orjson.loads(m["inputs_json"]),
        label=m["label"],
        probabilities=orjson.loads(m["probabilities_json"]),
        latency_ms=m["latency_ms"],
    )


def _window(q: Any, model: str, version: int | None, role: str | None, since: datetime | None) -> Any:
    q = q.where(cp.c.model == model)
    if version is not None:
        q = q.where(cp.c.version == version)
    if role is not None:
        q = q.where(cp.c.role == role)
    if since is not None:
        q = q.where(cp.c.at >= since)
    return q


class CaptureOps:
    """Mixed into :class:`~cascade_registry.sql_store.SqlRegistryStore`."""

    db: Database

    def record_captures(self, rows: list[CapturedPrediction]) -> int:
        if not rows:
            return 0
        stmt: Insert = _insert(self.db, cp).on_conflict_do_nothing(
            index_elements=["request_id", "row", "role"]
        )
        values = [_capture_values(r) for r in rows]
        return self.db.append(lambda c: len(c.execute(stmt.returning(cp.c.id), values).all()))

    def captured(
        self, model: str, version: int | None, role: str | None, since: datetime | None, limit: int
    ) -> list[CapturedPrediction]:
        """The newest ``limit`` rows of the window, oldest first."""
        q = _window(select(cp), model, version, role, since).order_by(cp.c.at.desc(), cp.c.id.desc())
        rows = self.db.read(lambda c: [r._mapping for r in c.execute(q.limit(limit))])
        return [_capture_from(m) for m in reversed(rows)]

    def record_labels(self, labels: list[FeedbackLabel]) -> int:
        if not labels:
            return 0
        stmt = _insert(self.db, fl)
        stmt = stmt.on_conflict_do_update(
            index_elements=["request_id", "row", "consumer"],
            set_={"label": stmt.excluded.label, "source": stmt.excluded.source, "at": stmt.excluded.at},
        )
        values = [label.model_dump() for label in labels]
        self.db.append(lambda c: c.execute(stmt, values))
        return len(values)

    def labelled(
        self, model: str, version: int | None, role: str | None, since: datetime | None, limit: int
    ) -> list[LabelledPrediction]:
        """Captured predictions with a label from the consumer that asked; the newest ``limit``, oldest
        first."""
        join = cp.join(
            fl, and_(fl.c.request_id == cp.c.request_id, fl.c.row == cp.c.row, fl.c.consumer == cp.c.consumer)
        )
        q = select(cp, fl.c.label.label("truth"), fl.c.at.label("labelled_at")).select_from(join)
        q = _window(q, model, version, role, since).order_by(cp.c.at.desc(), cp.c.id.desc()).limit(limit)
        rows = self.db.read(lambda c: [r._mapping for r in c.execute(q)])
        return [
            LabelledPrediction.model_construct(
                prediction=_capture_from(m), truth=m["truth"], labelled_at=as_utc(m["labelled_at"])
            )
            for m in reversed(rows)
        ]

    def labelled_requests(self, consumer: str, request_ids: list[str]) -> list[LabelledPrediction]:
        """The live captured predictions of these requests of ``consumer`` that have its label."""
        join = cp.join(
            fl, and_(fl.c.request_id == cp.c.request_id, fl.c.row == cp.c.row, fl.c.consumer == cp.c.consumer)
        )
        q = (
            select(cp, fl.c.label.label("truth"), fl.c.at.label("labelled_at"))
            .select_from(join)
            .where(cp.c.consumer == consumer, cp.c.role == "live")
            .where(cp.c.request_id.in_(sorted(set(request_ids))))
        )
        rows = self.db.read(lambda c: [r._mapping for r in c.execute(q)])
        return [
            LabelledPrediction.model_construct(
                prediction=_capture_from(m), truth=m["truth"], labelled_at=as_utc(m["labelled_at"])
            )
            for m in rows
        ]

    def prune_feedback(
        self, before: datetime, model: str | None, dry_run: bool, actor: str
    ) -> PrunedFeedback:
        """Delete captured predictions older than ``before`` (of ``model``), then the labels older than
        ``before`` that no captured prediction joins any more; one transaction, audited. ``dry_run``:
        count them, delete nothing."""
        old = cp.c.at < before if model is None else and_(cp.c.at < before, cp.c.model == model)
        joins = exists().where(
            fl.c.request_id == cp.c.request_id, fl.c.row == cp.c.row, fl.c.consumer == cp.c.consumer
        )

        def count(conn: Connection) -> PrunedFeedback:
            captured = conn.execute(select(func.count()).select_from(cp).where(old)).scalar_one()
            kept = joins.where(~old)  # a capture that stays
            orphaned = select(func.count()).select_from(fl).where(fl.c.at < before, ~kept)
            labels = conn.execute(orphaned).scalar_one()
            return PrunedFeedback(before=before, model=model, captured=captured, labels=labels, dry_run=True)

        def op(conn: Connection) -> PrunedFeedback:
            captured = conn.execute(delete(cp).where(old)).rowcount
            labels = conn.execute(delete(fl).where(fl.c.at < before, ~joins)).rowcount
            pruned = PrunedFeedback(before=before, model=model, captured=captured, labels=labels)
            append_audit(conn, actor, "prune_feedback", model or "*", pruned.model_dump(mode="json"))
            return pruned

        return self.db.read(count) if dry_run else self.db.append(op)

    def record_drift(self, check: DriftCheck) -> DriftCheck:
        ref = ModelRef(name=check.model, version=check.version)

        def op(conn: Connection) -> DriftCheck:
            row = version_row(conn, ref)  # NotFoundError for an unknown version
            values = check.model_dump(exclude={"figures"})
            conn.execute(drift_checks.insert().values(**values, figures_json=json.dumps(check.figures)))
            if check.stale:
                conn.execute(
                    update(model_versions)
                    .where(model_versions.c.id == row.id)
                    .values(stale=True, stale_reason=check.reason[:2000])
                )
            details = {
                "auc": check.auc,
                "threshold": check.threshold,
                "rows": check.rows,
                "stale": check.stale,
            }
            append_audit(conn, check.actor, "drift_check", str(ref), details)
            return check

        return self.db.write(op)

    def drift_checks(self, model: str, version: int | None) -> list[DriftCheck]:
        q = select(drift_checks).where(drift_checks.c.model == model).order_by(drift_checks.c.id)
        if version is not None:
            q = q.where(drift_checks.c.version == version)
        rows = self.db.read(lambda c: [r._mapping for r in c.execute(q)])
        return [
            DriftCheck(
                **{
                    k: m[k]
                    for k in ("model", "version", "auc", "threshold", "rows", "stale", "reason", "actor")
                },
                at=as_utc(m["at"]),
                figures=json.loads(m["figures_json"]),
            )
            for m in rows
        ]
