"""Model versions in SQL: register, gate, release (with the cascade rules), retire, read."""

from __future__ import annotations

from sqlalchemy import Connection, Row, insert, select, update

from cascade_registry.artifacts import ModelBundle, ModelRef
from cascade_registry.cascade import find_cycle
from cascade_registry.engine import Database
from cascade_registry.entities import ModelVersionInfo, TransitionInfo
from cascade_registry.errors import (
    CascadeBlockedError,
    ConflictError,
    CycleError,
    GateError,
    NotFoundError,
    OwnerError,
)
from cascade_registry.manifest import Manifest
from cascade_registry.records import (
    active_rollouts,
    append_audit,
    append_pin,
    as_utc,
    now,
    set_status,
    version_from_row,
)
from cascade_registry.schema import (
    consumers,
    declarations,
    model_owners,
    model_versions,
    transitions,
)
from cascade_registry.sql_graph import load_cascade
from cascade_registry.trust import GateVerdict

__all__ = ["VersionOps", "refuse_during_rollout", "version_row"]

mv = model_versions
_GATEABLE = ("registered", "gated_passed", "gated_failed", "stale")


def version_row(conn: Connection, ref: ModelRef) -> Row:
    row = conn.execute(select(mv).where(mv.c.name == ref.name, mv.c.version == ref.version)).first()
    if row is not None:
        return row
    known = conn.execute(select(mv.c.version).where(mv.c.name == ref.name).order_by(mv.c.version)).scalars()
    versions = ", ".join(str(v) for v in known)
    if versions:
        raise NotFoundError(f"model {ref.name} has no version {ref.version}", f"known versions: {versions}")
    raise NotFoundError(f"no model named {ref.name!r} is registered", "see 'lockgate registry list'")


def refuse_during_rollout(conn: Connection, refs: list[ModelRef], what: str) -> None:
    """A plain release or retire of a model with a rollout in progress would change its live version under
    the rollout: refused (finish it with ``registry promote`` or ``registry rollback`` first)."""
    busy = active_rollouts(conn)
    for ref in refs:
        row = busy.get(ref.name)
        involved = (row.live_version, row.candidate_version) if row is not None else ()
        if row is None or (what == "retired" and ref.version not in involved):
            continue
        raise ConflictError(
            f"refused: {ref.name} has a {row.mode} rollout of {ref.name}:{row.candidate_version} in "
            f"progress, so {ref} cannot be {what} now",
            f"finish it first: 'lockgate registry promote {ref.name}:{row.candidate_version}' or "
            f"'lockgate registry rollback {ref.name}'",
        )



class VersionOps:
    """Mixed into :class:`~cascade_registry.sql_store.SqlRegistryStore`."""

    db: Database

    # ------------------------------------------------------------------------------ reads
    def get_version(self, ref: ModelRef) -> ModelVersionInfo:
        return self.db.read(lambda c: version_from_row(version_row(c, ref)))

    def list_versions(self, name: str | None = None) -> list[ModelVersionInfo]:
        query = select(mv).order_by(mv.c.name, mv.c.version)
        if name is not None:
            query = query.where(mv.c.name == name)
        rows = self.db.read(lambda c: list(c.execute(query)))
        if name is not None and not rows:
            raise NotFoundError(f"no model named {name!r} is registered", "see 'lockgate registry list'")
        return [version_from_row(r) for r in rows]

    def released_versions(self) -> list[ModelVersionInfo]:
        query = select(mv).where(mv.c.status == "released").order_by(mv.c.name)
        return [version_from_row(r) for r in self.db.read(lambda c: list(c.execute(query)))]

    def transitions(self, ref: ModelRef) -> list[TransitionInfo]:
        def op(conn: Connection) -> list[TransitionInfo]:
            vid = version_row(conn, ref).id
            q = select(transitions).where(transitions.c.version_id == vid).order_by(transitions.c.id)
            return [
                TransitionInfo(
                    ref=ref,
                    from_status=r.from_status,
                    to_status=r.to_status,
                    actor=r.actor,
                    at=as_utc(r.at),
                    reason=r.reason,
                )
                for r in conn.execute(q)
            ]

        return self.db.read(op)

    # ------------------------------------------------------------------------------ register
    def register_version(
        self,
        bundle: ModelBundle,
        manifest: Manifest,
        gate: GateVerdict | None,
        actor: str,
        owner: str | None = None,
    ) -> ModelVersionInfo:
        """Record the bundle with its card and manifest; ``gate`` is its verified verdict, if it has one.

        The first version of a name records its owner (``owner``, default ``actor``); a later version may
        not name another one. Card upstreams become the model consumer's declarations and card pins."""
        card, sha, ref = bundle.card, bundle.onnx_sha256, bundle.ref
        gate_status = None
        if gate is not None and gate.report.ref == ref and gate.report.onnx_sha256 == sha:
            failed = any(c.status in ("fail", "error") for c in gate.report.checks)
            gate_status = "gated_passed" if gate.report.passed and not failed else "gated_failed"

        def op(conn: Connection) -> ModelVersionInfo:
            clash = conn.execute(select(mv.c.name, mv.c.version).where(mv.c.onnx_sha256 == sha)).first()
            if clash is not None:
                raise ConflictError(
                    f"model.onnx sha256 {sha[:12]}… is already registered as {clash.name}:{clash.version}",
                    "a bundle is registered once; train a new version to register a new model",
                )
            if conn.execute(
                select(mv.c.id).where(mv.c.name == ref.name, mv.c.version == ref.version)
            ).first():
                raise ConflictError(
                    f"{ref} is already registered", "train it again with a new version number"
                )
            service = conn.execute(
                select(consumers.c.kind).where(consumers.c.name == ref.name, consumers.c.kind == "service")
            ).first()
            if service is not None:
                raise ConflictError(
                    f"{ref.name!r} is already the name of a service consumer",
                    "model names and service names share one namespace; rename the model",
                )
            stale_reason = self._check_upstreams(conn, bundle)
            parent = self._check_parent(conn, bundle)
            model_owner = self._claim_owner(conn, ref.name, owner, actor)
            at = now()
            vid = conn.execute(
                insert(mv).values(
                    name=ref.name,
                    version=ref.version,
                    status="registered",
                    bundle_path=str(bundle.path),
                    onnx_sha256=sha,
                    card_json=card.model_dump_json(),
                    registered_at=at,
                    registered_by=actor,
                    status_at=at,
                    status_by=actor,
                    stale=stale_reason is not None,
                    stale_reason=stale_reason,
                    manifest_json=manifest.model_dump_json(),
                    gate_key_id=gate.key_id if gate_status is not None and gate is not None else None,
                    parent_name=None if parent is None else parent.name,
                    parent_version=None if parent is None else parent.version,
                )
            ).inserted_primary_key[0]
            conn.execute(
                insert(transitions).values(
                    version_id=vid,
                    from_status=None,
                    to_status="registered",
                    actor=actor,
                    at=at,
                    reason=f"bundle {bundle.path}",
                )
            )
            if stale_reason is not None:
                set_status(conn, vid, "registered", "stale", actor, stale_reason)
            elif gate_status is not None:
                set_status(conn, vid, "registered", gate_status, actor, "signed gate verdict in the bundle")
            if card.upstream:
                cid = self._model_consumer(conn, ref.name, model_owner, actor)
                for up in card.upstream:
                    append_pin(conn, ref, ModelRef(name=up.name, version=up.version), "card", actor)
                    conn.execute(
                        insert(declarations).values(
                            consumer_id=cid,
                            model_name=up.name,
                            versions=f"=={up.version}",
                            source="card",
                            consumer_version=ref.version,
                            pinned_version=up.version,
                            created_at=at,
                            created_by=actor,
                        )
                    )
            append_audit(
                conn,
                actor,
                "register",
                str(ref),
                {
                    "sha256": sha,
                    "bundle": str(bundle.path),
                    "gate": gate_status,
                    "upstream": [f"{u.name}:{u.version}" for u in card.upstream],
                    "owner": model_owner,
                    "stale": stale_reason,
                    "parent": None if parent is None else str(parent),
                },
            )
            return version_from_row(conn.execute(select(mv).where(mv.c.id == vid)).one())

        return self.db.write(op)

    @staticmethod
    def _check_parent(conn: Connection, bundle: ModelBundle) -> ModelRef | None:
        """The card's parent as lineage; refused when this registry holds that version as another model."""
        parent = bundle.card.parent
        ref = None if parent is None else parent.ref
        if parent is None or ref is None:
            return None
        if ref == bundle.ref:
            raise ConflictError(f"{ref} names itself as its parent", "retrain it from another version")
        row = conn.execute(
            select(mv.c.onnx_sha256).where(mv.c.name == ref.name, mv.c.version == ref.version)
        ).first()
        if row is not None and parent.onnx_sha256 is not None and row.onnx_sha256 != parent.onnx_sha256:
            raise ConflictError(
                f"{bundle.ref}'s card names parent {ref} with model.onnx sha256 {parent.onnx_sha256[:12]}…, "
                f"but this registry holds {ref} as {row.onnx_sha256[:12]}…",
                f"retrain {bundle.ref.name} with --init-from {ref} from this registry",
            )
        return ref

    @staticmethod
    def _check_upstreams(conn: Connection, bundle: ModelBundle) -> str | None:
        """Refuse unknown upstreams and cycles; return why the new version is stale on arrival, if it is."""
        ref, stale = bundle.ref, None
        if not bundle.card.upstream:
            return None
        cascade = load_cascade(conn)
        for up in bundle.card.upstream:
            state = cascade.status.get((up.name, up.version))
            if state is None:
                raise NotFoundError(
                    f"{ref}'s card names upstream {up.name}:{up.version}, which is not registered",
                    "register the upstream bundle first",
                )
            if up.onnx_sha256 is not None:
                registered = conn.execute(
                    select(mv.c.onnx_sha256).where(mv.c.name == up.name, mv.c.version == up.version)
                ).scalar_one()
                if registered != up.onnx_sha256:
                    raise ConflictError(
                        f"{ref} was trained on an {up.name}:{up.version} with sha256 {up.onnx_sha256[:12]}…, "
                        f"but the registry's {up.name}:{up.version} is {registered[:12]}…",
                        f"retrain {ref.name} against the registered {up.name}:{up.version}",
                    )
            cycle = find_cycle(cascade.edges, up.name, ref.name)
            if cycle is not None:
                raise CycleError(cycle)
            cascade.edges[up.name].add(ref.name)
            released = [v for (n, v), (s, _) in cascade.status.items() if n == up.name and s == "released"]
            if state[1]:
                stale = f"trained on {up.name}:{up.version}, which is stale"
            elif released and released[0] > up.version:
                stale = f"trained on {up.name}:{up.version}; {up.name}:{released[0]} is released"
        return stale

    @staticmethod
    def _claim_owner(conn: Connection, name: str, owner: str | None, actor: str) -> str:
        recorded = conn.execute(select(model_owners.c.owner).where(model_owners.c.name == name)).scalar()
        if recorded is None:
            recorded = owner or actor
            conn.execute(
                insert(model_owners).values(name=name, owner=recorded, created_at=now(), created_by=actor)
            )
        elif owner is not None and owner != recorded:
            raise OwnerError(
                f"model {name!r} is owned by {recorded!r} (set when its first version was registered), "
                f"not {owner!r}",
                "leave --owner out, or register the model under another name",
            )
        return recorded

    @staticmethod
    def _model_consumer(conn: Connection, name: str, owner: str, actor: str) -> int:
        row = conn.execute(select(consumers).where(consumers.c.name == name)).first()
        if row is None:
            append_audit(conn, actor, "consumer.add", name, {"kind": "model", "owner": owner, "auto": True})
            return conn.execute(
                insert(consumers).values(
                    name=name, kind="model", owner=owner, created_at=now(), created_by=actor
                )
            ).inserted_primary_key[0]
        if row.revoked_at is not None:
            raise ConflictError(f"consumer {name!r} was revoked", "register the model under a new name")
        return row.id

    # ------------------------------------------------------------------------------ gate, retire
    def record_gate(
        self, ref: ModelRef, passed: bool, gate_sha256: str, actor: str, key_id: str | None = None
    ) -> ModelVersionInfo:
        def op(conn: Connection) -> ModelVersionInfo:
            row = version_row(conn, ref)
            if row.onnx_sha256 != gate_sha256:
                raise GateError(
                    f"the gate report is for sha256 {gate_sha256[:12]}…, not {ref}'s {row.onnx_sha256[:12]}…",
                    f"run 'lockgate check {row.bundle_path}'",
                )
            if row.status not in _GATEABLE:
                raise ConflictError(f"{ref} is {row.status}; only versions not yet released can be gated")
            target = "gated_passed" if passed else "gated_failed"
            if row.status != target and not (row.status == "stale" and passed):
                set_status(conn, row.id, row.status, target, actor, "gate report recorded")
            conn.execute(update(mv).where(mv.c.id == row.id).values(gate_key_id=key_id))
            append_audit(
                conn, actor, "gate", str(ref), {"passed": passed, "sha256": gate_sha256, "key_id": key_id}
            )
            return version_from_row(conn.execute(select(mv).where(mv.c.id == row.id)).one())

        return self.db.write(op)

    def retire_version(self, ref: ModelRef, actor: str, reason: str) -> ModelVersionInfo:
        def op(conn: Connection) -> ModelVersionInfo:
            row = version_row(conn, ref)
            if row.status == "retired":
                raise ConflictError(f"{ref} is already retired")
            refuse_during_rollout(conn, [ref], "retired")
            cascade = load_cascade(conn)
            pinning = sorted(
                f"{c}:{cv}"
                for c, cv, up, uv in cascade.pins
                if (up, uv) == (ref.name, ref.version) and cascade.status[(c, cv)][0] == "released"
            )
            if pinning:
                raise CascadeBlockedError(
                    f"refused: released {', '.join(pinning)} pinned to {ref} (the gateway composes with it)",
                    f"revalidate {pinning[0]} onto another version of {ref.name}, or retire it first",
                    pinning,
                )
            set_status(conn, row.id, row.status, "retired", actor, reason)
            append_audit(conn, actor, "retire", str(ref), {"from": row.status, "reason": reason})
            return version_from_row(conn.execute(select(mv).where(mv.c.id == row.id)).one())

        return self.db.write(op)
