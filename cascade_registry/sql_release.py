"""Releasing versions in SQL: one or several in one transaction, in dependency order, all or nothing.

The cascade rules, checked for each version of the batch in turn (a batch member released earlier in the
transaction counts as released):

- **pins live**: every effective pin of the version names an upstream version that is or was released
  (a downstream model is never live on an upstream version no direct caller was ever given);
  not waivable: release the upstream in the same batch (``registry release a:2 b:2``).
- **stale**: a version pinned to an upstream older than the released one needs a waiver from the owner
  of its model (a waiver names its owner; it is refused unless that owner is the recorded owner,
  ``model_owners``, of every model it is needed for).

Releasing ``a:2`` while a released downstream version is pinned to ``a:1`` is allowed: the gateway keeps
composing it with ``a:1`` (that is what the pin is for), the version is flagged stale, and ``impact a``
lists it until it is revalidated or retrained.
"""

from __future__ import annotations

from sqlalchemy import Connection, Row, insert, select, update

from cascade_registry.artifacts import ModelRef
from cascade_registry.cascade import stale_closure
from cascade_registry.engine import Database
from cascade_registry.entities import ModelVersionInfo
from cascade_registry.errors import CascadeBlockedError, ConflictError, GateError, OwnerError
from cascade_registry.records import append_audit, now, set_status, version_from_row
from cascade_registry.schema import model_owners, model_versions, waivers
from cascade_registry.sql_graph import CascadeRows, load_cascade
from cascade_registry.sql_versions import refuse_during_rollout, version_row

__all__ = ["ReleaseOps", "Waiver", "check_pins_live", "owner_of"]

mv = model_versions
_WAS_RELEASED = ("released", "superseded")


class Waiver:
    """A release waiver: why, and the owner who gives it (checked against every model it is needed for)."""

    def __init__(self, reason: str, owner: str) -> None:
        self.reason = reason
        self.owner = owner


def owner_of(conn: Connection, name: str) -> str | None:
    return conn.execute(select(model_owners.c.owner).where(model_owners.c.name == name)).scalar()


def dependency_order(refs: list[ModelRef], cascade: CascadeRows) -> list[ModelRef]:
    """``refs`` with every upstream before the batch members pinned to it (stable otherwise)."""
    batch = {(r.name, r.version) for r in refs}
    needs: dict[tuple[str, int], set[tuple[str, int]]] = {k: set() for k in batch}
    for consumer, cver, upstream, uver in cascade.pins:
        if (consumer, cver) in batch and (upstream, uver) in batch:
            needs[(consumer, cver)].add((upstream, uver))
    ordered: list[ModelRef] = []
    done: set[tuple[str, int]] = set()
    while len(ordered) < len(refs):
        ready = [r for r in refs if (r.name, r.version) not in done and needs[(r.name, r.version)] <= done]
        for r in ready or [r for r in refs if (r.name, r.version) not in done]:  # a cycle cannot be stored
            ordered.append(r)
            done.add((r.name, r.version))
    return ordered


class ReleaseOps:
    """Mixed into :class:`~cascade_registry.sql_store.SqlRegistryStore`."""

    db: Database

    def release_versions(
        self, refs: list[ModelRef], gate_sha256: dict[ModelRef, str], waiver: Waiver | None, actor: str
    ) -> list[ModelVersionInfo]:
        """Release ``refs`` in one transaction (any refusal -> nothing released); returns them in the order
        they were released."""
        if len(set(refs)) != len(refs) or len({r.name for r in refs}) != len(refs):
            raise ConflictError(
                "a release batch names one version per model", "drop the repeated model from the list"
            )

        def op(conn: Connection) -> list[ModelVersionInfo]:
            refuse_during_rollout(conn, refs, "released")
            ordered = dependency_order(refs, load_cascade(conn))
            used: list[str] = []
            released = []
            for ref in ordered:
                try:
                    released.append(self._release_one(conn, ref, gate_sha256[ref], waiver, used, actor))
                except (CascadeBlockedError, OwnerError, GateError, ConflictError) as e:
                    if len(refs) == 1:
                        raise
                    e.problem = f"nothing released: {e.problem}"
                    e.args = (f"{e.problem} ({e.fix})" if e.fix else e.problem,)
                    raise
            if waiver is not None and not used:
                raise CascadeBlockedError(
                    f"nothing to waive: {', '.join(map(str, refs))} can be released without a waiver",
                    "release without --waive",
                    [],
                )
            return released

        return self.db.write(op)

    def _release_one(
        self,
        conn: Connection,
        ref: ModelRef,
        gate_sha256: str,
        waiver: Waiver | None,
        used: list[str],
        actor: str,
    ) -> ModelVersionInfo:
        row = version_row(conn, ref)
        if row.onnx_sha256 != gate_sha256:
            raise GateError(
                f"the passing gate report is for sha256 {gate_sha256[:12]}…, but {ref} was registered "
                f"with {row.onnx_sha256[:12]}…",
                f"run 'lockgate check {row.bundle_path}' again",
            )
        if row.status in ("released", "retired"):
            raise ConflictError(f"{ref} is already {row.status}")
        cascade = load_cascade(conn)
        check_pins_live(ref, cascade)
        if row.stale and waiver is None:
            raise CascadeBlockedError(
                f"refused: {ref} is stale ({row.stale_reason})",
                f"revalidate or retrain it against the released upstream, or have its owner "
                f"({owner_of(conn, ref.name)}) pass --waive REASON --owner NAME",
                [str(ref)],
            )
        if waiver is not None and row.stale:
            _check_owner(conn, waiver, [ref.name])
            used.append(str(ref))
        return self._apply_release(conn, row, ref, cascade, waiver if row.stale else None, actor)

    def _apply_release(
        self,
        conn: Connection,
        row: Row,
        ref: ModelRef,
        cascade: CascadeRows,
        waiver: Waiver | None,
        actor: str,
    ) -> ModelVersionInfo:
        stale = stale_closure(cascade.pins, ref.name, ref.version)
        for (name, version), reason in stale.items():
            mark_stale(conn, ModelRef(name=name, version=version), reason, actor)
        for prev in conn.execute(
            select(mv.c.id, mv.c.version).where(mv.c.name == ref.name, mv.c.status == "released")
        ).all():
            set_status(conn, prev.id, "released", "superseded", actor, f"{ref} released")
            append_audit(conn, actor, "supersede", f"{ref.name}:{prev.version}", {"by": str(ref)})
        status = row.status
        if status in ("registered", "gated_failed"):
            set_status(conn, row.id, status, "gated_passed", actor, "passing gate report bound to sha256")
            status = "gated_passed"
        reason = f"waiver by {waiver.owner}: {waiver.reason}" if waiver else ""
        set_status(conn, row.id, status, "released", actor, reason, released_at=now(), released_by=actor)
        affected = sorted({str(ref)} | {f"{n}:{v}" for n, v in stale})
        if waiver is not None:
            conn.execute(
                insert(waivers).values(
                    version_id=row.id,
                    reason=waiver.reason,
                    actor=actor,
                    owner=waiver.owner,
                    at=now(),
                    affected=",".join(affected),
                )
            )
        append_audit(
            conn,
            actor,
            "release",
            str(ref),
            {
                "sha256": row.onnx_sha256,
                "waiver": waiver.reason if waiver else None,
                "waiver_owner": waiver.owner if waiver else None,
                "older_pins": sorted(
                    f"{c}:{cv}"
                    for c, cv, up, uv in cascade.pins
                    if up == ref.name and uv < ref.version and cascade.status[(c, cv)][0] == "released"
                ),
                "stale": sorted(f"{n}:{v}" for n, v in stale),
            },
        )
        return version_from_row(conn.execute(select(mv).where(mv.c.id == row.id)).one())


def check_pins_live(ref: ModelRef, cascade: CascadeRows) -> None:
    dead = sorted(
        f"{up}:{uv}"
        for c, cv, up, uv in cascade.pins
        if (c, cv) == (ref.name, ref.version)
        and cascade.status.get((up, uv), ("", False))[0] not in _WAS_RELEASED
    )
    if dead:
        raise CascadeBlockedError(
            f"refused: {ref} is pinned to {', '.join(dead)}, which has never been released",
            f"release them together, upstream first: 'lockgate registry release {' '.join(dead)} {ref}'",
            dead,
        )


def _check_owner(conn: Connection, waiver: Waiver, names: list[str]) -> None:
    wrong = [(n, owner_of(conn, n)) for n in sorted(set(names)) if owner_of(conn, n) != waiver.owner]
    if wrong:
        listing = ", ".join(f"{n} is owned by {o}" for n, o in wrong)
        raise OwnerError(
            f"refused: a waiver by {waiver.owner!r} for models it does not own ({listing})",
            "only a model's owner may waive for it: ask them, or revalidate/retrain instead",
        )


def mark_stale(conn: Connection, ref: ModelRef, reason: str, actor: str) -> None:
    row = conn.execute(select(mv).where(mv.c.name == ref.name, mv.c.version == ref.version)).one()
    if row.stale:
        return
    conn.execute(update(mv).where(mv.c.id == row.id).values(stale=True, stale_reason=reason))
    if row.status in ("registered", "gated_passed", "gated_failed"):
        set_status(conn, row.id, row.status, "stale", actor, reason)
    append_audit(conn, actor, "stale", str(ref), {"reason": reason, "status": row.status})
