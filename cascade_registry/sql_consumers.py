"""Consumers, their API keys and their declarations in SQL."""

from __future__ import annotations

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from cascade_registry.cascade import find_cycle
from cascade_registry.engine import Database
from cascade_registry.entities import ApiKeyInfo, ConsumerInfo, DeclarationInfo
from cascade_registry.errors import ConflictError, CycleError, NotFoundError
from cascade_registry.keys import GeneratedKey
from cascade_registry.records import append_audit, as_utc, consumer_from_row, now
from cascade_registry.schema import api_keys, consumers, declarations, model_versions
from cascade_registry.sql_graph import load_cascade

__all__ = ["ConsumerOps", "KeyRecord"]


class KeyRecord:
    """What a key check needs from the database (never the secret)."""

    __slots__ = ("consumer", "consumer_revoked", "key_hash", "revoked", "salt")

    def __init__(
        self, consumer: str, salt: str, key_hash: str, revoked: bool, consumer_revoked: bool
    ) -> None:
        self.consumer = consumer
        self.salt = salt
        self.key_hash = key_hash
        self.revoked = revoked
        self.consumer_revoked = consumer_revoked


def _consumer_row(conn: Connection, name: str, active: bool = False) -> Row:
    row = conn.execute(select(consumers).where(consumers.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no consumer named {name!r}", "add it with 'lockgate registry consumer add'")
    if active and row.revoked_at is not None:
        raise ConflictError(f"consumer {name!r} was revoked", "add a new consumer under another name")
    return row


def _active_keys(conn: Connection, consumer_id: int) -> int:
    return conn.execute(
        select(func.count())
        .select_from(api_keys)
        .where(api_keys.c.consumer_id == consumer_id, api_keys.c.revoked_at.is_(None))
    ).scalar_one()


class ConsumerOps:
    """Mixed into :class:`~cascade_registry.sql_store.SqlRegistryStore`."""

    db: Database

    # ------------------------------------------------------------------------------ consumers
    def add_consumer(self, name: str, kind: str, owner: str, actor: str) -> ConsumerInfo:
        def op(conn: Connection) -> ConsumerInfo:
            if conn.execute(select(consumers.c.id).where(consumers.c.name == name)).first():
                raise ConflictError(f"consumer {name!r} already exists", "pick another name")
            if (
                kind == "service"
                and conn.execute(select(model_versions.c.id).where(model_versions.c.name == name)).first()
            ):
                raise ConflictError(
                    f"{name!r} is the name of a registered model",
                    "service names and model names share one namespace; pick another name",
                )
            conn.execute(
                insert(consumers).values(
                    name=name, kind=kind, owner=owner, created_at=now(), created_by=actor
                )
            )
            append_audit(conn, actor, "consumer.add", name, {"kind": kind, "owner": owner})
            return consumer_from_row(_consumer_row(conn, name))

        return self.db.write(op)

    def get_consumer(self, name: str) -> ConsumerInfo:
        def op(conn: Connection) -> ConsumerInfo:
            row = _consumer_row(conn, name)
            return consumer_from_row(row, _active_keys(conn, row.id))

        return self.db.read(op)

    def list_consumers(self) -> list[ConsumerInfo]:
        def op(conn: Connection) -> list[ConsumerInfo]:
            counts = dict(
                conn.execute(
                    select(api_keys.c.consumer_id, func.count())
                    .where(api_keys.c.revoked_at.is_(None))
                    .group_by(api_keys.c.consumer_id)
                ).all()
            )
            rows = conn.execute(select(consumers).order_by(consumers.c.name))
            return [consumer_from_row(r, counts.get(r.id, 0)) for r in rows]

        return self.db.read(op)

    def revoke_consumer(self, name: str, actor: str) -> ConsumerInfo:
        def op(conn: Connection) -> ConsumerInfo:
            row = _consumer_row(conn, name, active=True)
            at = now()
            conn.execute(
                update(consumers).where(consumers.c.id == row.id).values(revoked_at=at, revoked_by=actor)
            )
            keys = conn.execute(
                update(api_keys)
                .where(api_keys.c.consumer_id == row.id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at, revoked_by=actor)
            ).rowcount
            append_audit(conn, actor, "consumer.revoke", name, {"keys_revoked": keys})
            return consumer_from_row(_consumer_row(conn, name))

        return self.db.write(op)

    # ------------------------------------------------------------------------------ keys
    def add_key(self, consumer: str, key: GeneratedKey, actor: str, rotate: bool) -> ApiKeyInfo:
        def op(conn: Connection) -> ApiKeyInfo:
            row = _consumer_row(conn, consumer, active=True)
            at = now()
            revoked: list[str] = []
            if rotate:
                revoked = list(
                    conn.execute(
                        select(api_keys.c.key_id).where(
                            api_keys.c.consumer_id == row.id, api_keys.c.revoked_at.is_(None)
                        )
                    ).scalars()
                )
                conn.execute(
                    update(api_keys)
                    .where(api_keys.c.consumer_id == row.id, api_keys.c.revoked_at.is_(None))
                    .values(revoked_at=at, revoked_by=actor)
                )
            conn.execute(
                insert(api_keys).values(
                    consumer_id=row.id,
                    key_id=key.key_id,
                    salt=key.salt,
                    key_hash=key.key_hash,
                    created_at=at,
                    created_by=actor,
                )
            )
            append_audit(
                conn,
                actor,
                "key.rotate" if rotate else "key.issue",
                consumer,
                {"key_id": key.key_id, "revoked_key_ids": revoked},
            )
            return ApiKeyInfo(key_id=key.key_id, consumer=consumer, created_at=at, created_by=actor)

        return self.db.write(op)

    def revoke_keys(self, consumer: str, actor: str, key_id: str | None = None) -> list[str]:
        def op(conn: Connection) -> list[str]:
            row = _consumer_row(conn, consumer)
            where = [api_keys.c.consumer_id == row.id, api_keys.c.revoked_at.is_(None)]
            if key_id is not None:
                where.append(api_keys.c.key_id == key_id)
            ids = list(conn.execute(select(api_keys.c.key_id).where(*where)).scalars())
            if not ids:
                what = f"key {key_id}" if key_id else "key"
                raise NotFoundError(
                    f"consumer {consumer!r} has no active {what}", "see 'lockgate registry consumer list'"
                )
            conn.execute(update(api_keys).where(*where).values(revoked_at=now(), revoked_by=actor))
            append_audit(conn, actor, "key.revoke", consumer, {"key_ids": ids})
            return ids

        return self.db.write(op)

    def list_keys(self, consumer: str) -> list[ApiKeyInfo]:
        def op(conn: Connection) -> list[ApiKeyInfo]:
            row = _consumer_row(conn, consumer)
            q = select(api_keys).where(api_keys.c.consumer_id == row.id).order_by(api_keys.c.id)
            return [
                ApiKeyInfo(
                    key_id=k.key_id,
                    consumer=consumer,
                    created_at=as_utc(k.created_at),
                    created_by=k.created_by,
                    revoked_at=as_utc(k.revoked_at),
                )
                for k in conn.execute(q)
            ]

        return self.db.read(op)

    def lookup_key(self, key_id: str) -> KeyRecord | None:
        q = (
            select(
                consumers.c.name,
                api_keys.c.salt,
                api_keys.c.key_hash,
                api_keys.c.revoked_at,
                consumers.c.revoked_at.label("consumer_revoked_at"),
            )
            .join(consumers, consumers.c.id == api_keys.c.consumer_id)
            .where(api_keys.c.key_id == key_id)
        )
        row = self.db.read(lambda c: c.execute(q).first())
        if row is None:
            return None
        return KeyRecord(
            row.name, row.salt, row.key_hash, row.revoked_at is not None, row.consumer_revoked_at is not None
        )

    # ------------------------------------------------------------------------------ declarations
    def declare(self, consumer: str, model: str, versions: str | None, actor: str) -> DeclarationInfo:
        def op(conn: Connection) -> DeclarationInfo:
            row = _consumer_row(conn, consumer, active=True)
            if not conn.execute(select(model_versions.c.id).where(model_versions.c.name == model)).first():
                raise NotFoundError(f"no model named {model!r} is registered", "register it before declaring")
            if row.kind == "model":
                cycle = find_cycle(load_cascade(conn).edges, model, consumer)
                if cycle is not None:
                    raise CycleError(cycle)
            where = (
                declarations.c.consumer_id == row.id,
                declarations.c.model_name == model,
                declarations.c.consumer_version == 0,
            )
            at = now()
            if conn.execute(select(declarations.c.id).where(*where)).first():
                conn.execute(
                    update(declarations)
                    .where(*where)
                    .values(versions=versions, created_at=at, created_by=actor)
                )
            else:
                conn.execute(
                    insert(declarations).values(
                        consumer_id=row.id,
                        model_name=model,
                        versions=versions,
                        source="manual",
                        consumer_version=0,
                        created_at=at,
                        created_by=actor,
                    )
                )
            append_audit(conn, actor, "declare", f"{consumer}->{model}", {"versions": versions})
            return DeclarationInfo(
                consumer=consumer,
                consumer_kind=row.kind,
                model=model,
                versions=versions,
                source="manual",
                created_at=at,
                created_by=actor,
            )

        return self.db.write(op)

    def undeclare(self, consumer: str, model: str, actor: str) -> None:
        def op(conn: Connection) -> None:
            row = _consumer_row(conn, consumer)
            base = (declarations.c.consumer_id == row.id, declarations.c.model_name == model)
            gone = conn.execute(delete(declarations).where(*base, declarations.c.source == "manual")).rowcount
            if not gone:
                card = list(
                    conn.execute(
                        select(declarations.c.consumer_version).where(*base, declarations.c.source == "card")
                    ).scalars()
                )
                if card:
                    versions = ", ".join(f"{consumer}:{v}" for v in card)
                    raise ConflictError(
                        f"{consumer} -> {model} comes from the card of {versions} (trained on it)",
                        "retire those versions instead of undeclaring",
                    )
                raise NotFoundError(f"consumer {consumer!r} has no declaration for model {model!r}")
            append_audit(conn, actor, "undeclare", f"{consumer}->{model}", {})

        self.db.write(op)

    def list_declarations(
        self, consumer: str | None = None, model: str | None = None
    ) -> list[DeclarationInfo]:
        q = (
            select(consumers.c.name, consumers.c.kind, declarations)
            .join(consumers, consumers.c.id == declarations.c.consumer_id)
            .order_by(consumers.c.name, declarations.c.model_name, declarations.c.consumer_version)
        )
        if consumer is not None:
            q = q.where(consumers.c.name == consumer)
        if model is not None:
            q = q.where(declarations.c.model_name == model)
        rows = self.db.read(lambda c: list(c.execute(q)))
        return [
            DeclarationInfo(
                consumer=r.name,
                consumer_kind=r.kind,
                model=r.model_name,
                versions=r.versions,
                source=r.source,
                consumer_version=r.consumer_version or None,
                pinned_version=r.pinned_version,
                created_at=as_utc(r.created_at),
                created_by=r.created_by,
            )
            for r in rows
        ]
