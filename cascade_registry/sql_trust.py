"""The trust roots in SQL: the gate keys the registry accepts and its minimum gate policy."""

from __future__ import annotations

import json

from sqlalchemy import Connection, Row, insert, select, update

from cascade_registry.engine import Database
from cascade_registry.entities import TrustedKeyInfo
from cascade_registry.errors import ConflictError, NotFoundError
from cascade_registry.gate_policy import GatePolicy
from cascade_registry.records import append_audit, as_utc, now
from cascade_registry.schema import registry_config, trusted_keys

__all__ = ["TrustOps"]

_MIN_POLICY = "min_policy"


def _key_from_row(row: Row) -> TrustedKeyInfo:
    m = row._mapping
    return TrustedKeyInfo(
        key_id=m["key_id"],
        public_key=m["public_key"],
        label=m["label"],
        added_at=as_utc(m["added_at"]),
        added_by=m["added_by"],
        removed_at=as_utc(m["removed_at"]),
    )


class TrustOps:
    """Mixed into :class:`~cascade_registry.sql_store.SqlRegistryStore`."""

    db: Database

    def add_trusted_key(self, key_id: str, public_key: str, label: str, actor: str) -> TrustedKeyInfo:
        def op(conn: Connection) -> TrustedKeyInfo:
            row = conn.execute(select(trusted_keys).where(trusted_keys.c.key_id == key_id)).first()
            if row is not None and row.removed_at is None:
                raise ConflictError(f"key {key_id} is already trusted (label {row.label!r})")
            if row is not None:
                raise ConflictError(
                    f"key {key_id} was removed from the trusted keys on {as_utc(row.removed_at):%Y-%m-%d}",
                    "a removed key stays removed; make a new one with 'lockgate keygen'",
                )
            conn.execute(
                insert(trusted_keys).values(
                    key_id=key_id, public_key=public_key, label=label, added_at=now(), added_by=actor
                )
            )
            append_audit(conn, actor, "trust.add", key_id, {"label": label})
            return _key_from_row(
                conn.execute(select(trusted_keys).where(trusted_keys.c.key_id == key_id)).one()
            )

        return self.db.write(op)

    def list_trusted_keys(self, include_removed: bool = False) -> list[TrustedKeyInfo]:
        q = select(trusted_keys).order_by(trusted_keys.c.id)
        if not include_removed:
            q = q.where(trusted_keys.c.removed_at.is_(None))
        return [_key_from_row(r) for r in self.db.read(lambda c: list(c.execute(q)))]

    def remove_trusted_key(self, key_id: str, actor: str) -> TrustedKeyInfo:
        def op(conn: Connection) -> TrustedKeyInfo:
            row = conn.execute(
                select(trusted_keys).where(
                    trusted_keys.c.key_id == key_id, trusted_keys.c.removed_at.is_(None)
                )
            ).first()
            if row is None:
                raise NotFoundError(f"no trusted key {key_id!r}", "see 'lockgate registry trust list'")
            conn.execute(
                update(trusted_keys)
                .where(trusted_keys.c.id == row.id)
                .values(removed_at=now(), removed_by=actor)
            )
            append_audit(conn, actor, "trust.remove", key_id, {"label": row.label})
            return _key_from_row(conn.execute(select(trusted_keys).where(trusted_keys.c.id == row.id)).one())

        return self.db.write(op)

    def min_policy(self) -> GatePolicy:
        """The registry's minimum gate policy (the shipped defaults until one is set)."""
        q = select(registry_config.c.value).where(registry_config.c.name == _MIN_POLICY)
        value = self.db.read(lambda c: c.execute(q).scalar())
        return GatePolicy() if value is None else GatePolicy.model_validate_json(value)

    def set_min_policy(self, policy: GatePolicy, actor: str) -> GatePolicy:
        def op(conn: Connection) -> GatePolicy:
            value = policy.model_dump_json()
            exists = conn.execute(
                select(registry_config.c.name).where(registry_config.c.name == _MIN_POLICY)
            ).first()
            values = {"value": value, "updated_at": now(), "updated_by": actor}
            if exists:
                conn.execute(
                    update(registry_config).where(registry_config.c.name == _MIN_POLICY).values(**values)
                )
            else:
                conn.execute(insert(registry_config).values(name=_MIN_POLICY, **values))
            append_audit(conn, actor, "policy.set", _MIN_POLICY, json.loads(value))
            return policy

        return self.db.write(op)
