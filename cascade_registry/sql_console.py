"""Console users and the read models of the web console (model summaries, a page of the audit log)."""

from __future__ import annotations

from sqlalchemy import Connection, Row, insert, select, update

from cascade_registry.engine import Database
from cascade_registry.entities import ApiKeyInfo, AuditEntry, ConsoleUserInfo, ModelSummary
from cascade_registry.errors import ConflictError, NotFoundError
from cascade_registry.records import append_audit, as_utc, audit_from_row, now
from cascade_registry.schema import (
    api_keys,
    audit_log,
    console_users,
    consumers,
    declarations,
    model_versions,
    transitions,
)

__all__ = ["ConsoleOps"]

mv = model_versions
_PASSED = ("gated_passed", "released", "superseded")


def _user(row: Row) -> ConsoleUserInfo:
    return ConsoleUserInfo(
        name=row.name,
        role=row.role,
        created_at=as_utc(row.created_at),
        created_by=row.created_by,
        disabled_at=as_utc(row.disabled_at),
    )


def _user_row(conn: Connection, name: str) -> Row:
    row = conn.execute(select(console_users).where(console_users.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no console user named {name!r}", "add one with 'lockgate console user add'")
    return row


class ConsoleOps:
    """Mixed into :class:`~cascade_registry.sql_store.SqlRegistryStore`."""

    db: Database

    # ------------------------------------------------------------------------------ users
    def add_console_user(
        self, name: str, role: str, salt: str, password_hash: str, actor: str
    ) -> ConsoleUserInfo:
        def op(conn: Connection) -> ConsoleUserInfo:
            if conn.execute(select(console_users.c.id).where(console_users.c.name == name)).first():
                raise ConflictError(f"console user {name!r} already exists", "pick another name")
            conn.execute(
                insert(console_users).values(
                    name=name,
                    role=role,
                    salt=salt,
                    password_hash=password_hash,
                    created_at=now(),
                    created_by=actor,
                )
            )
            append_audit(conn, actor, "console.user_add", name, {"role": role})
            return _user(_user_row(conn, name))

        return self.db.write(op)

    def console_user_secret(self, name: str) -> tuple[ConsoleUserInfo, str, str] | None:
        """The user with its salt and hash (for a password check), or None when unknown."""

        def op(conn: Connection) -> tuple[ConsoleUserInfo, str, str] | None:
            row = conn.execute(select(console_users).where(console_users.c.name == name)).first()
            return None if row is None else (_user(row), row.salt, row.password_hash)

        return self.db.read(op)

    def get_console_user(self, name: str) -> ConsoleUserInfo:
        return self.db.read(lambda c: _user(_user_row(c, name)))

    def list_console_users(self) -> list[ConsoleUserInfo]:
        q = select(console_users).order_by(console_users.c.name)
        return [_user(r) for r in self.db.read(lambda c: list(c.execute(q)))]

    def disable_console_user(self, name: str, actor: str) -> ConsoleUserInfo:
        def op(conn: Connection) -> ConsoleUserInfo:
            row = _user_row(conn, name)
            if row.disabled_at is not None:
                raise ConflictError(f"console user {name!r} is already disabled")
            conn.execute(update(console_users).where(console_users.c.id == row.id).values(disabled_at=now()))
            append_audit(conn, actor, "console.user_disable", name, {})
            return _user(_user_row(conn, name))

        return self.db.write(op)

    def record_console_login(self, name: str) -> None:
        self.db.write(lambda c: append_audit(c, name, "console.login", name, {}))

    # ------------------------------------------------------------------------------ read models
    def model_summaries(self) -> list[ModelSummary]:
        return self.db.read(_summaries)

    def keys_by_consumer(self) -> dict[str, list[ApiKeyInfo]]:
        q = (
            select(consumers.c.name, api_keys)
            .join(consumers, consumers.c.id == api_keys.c.consumer_id)
            .order_by(api_keys.c.id)
        )
        out: dict[str, list[ApiKeyInfo]] = {}
        for k in self.db.read(lambda c: list(c.execute(q))):
            out.setdefault(k.name, []).append(
                ApiKeyInfo(
                    key_id=k.key_id,
                    consumer=k.name,
                    created_at=as_utc(k.created_at),
                    created_by=k.created_by,
                    revoked_at=as_utc(k.revoked_at),
                )
            )
        return out

    def audit_page(
        self, subject: str | None, actor: str | None, action: str | None, before: int | None, limit: int
    ) -> list[AuditEntry]:
        q = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if subject is not None:
            q = q.where(audit_log.c.subject.contains(subject, autoescape=True))
        if actor is not None:
            q = q.where(audit_log.c.actor == actor)
        if action is not None:
            q = q.where(audit_log.c.action.startswith(action, autoescape=True))
        if before is not None:
            q = q.where(audit_log.c.id < before)
        return [audit_from_row(r) for r in self.db.read(lambda c: list(c.execute(q)))]


def _summaries(conn: Connection) -> list[ModelSummary]:
    rows = conn.execute(
        select(mv.c.id, mv.c.name, mv.c.version, mv.c.status, mv.c.stale, mv.c.stale_reason).order_by(
            mv.c.name, mv.c.version
        )
    ).all()
    gates = conn.execute(
        select(mv.c.name, mv.c.version, transitions.c.to_status)
        .join(mv, mv.c.id == transitions.c.version_id)
        .where(transitions.c.to_status.in_(("gated_passed", "gated_failed")))
        .order_by(transitions.c.id)
    ).all()
    last_gate = {name: (version, to) for name, version, to in gates}
    users: dict[str, set[str]] = {}
    for consumer, model in conn.execute(
        select(consumers.c.name, declarations.c.model_name).join(
            consumers, consumers.c.id == declarations.c.consumer_id
        )
    ):
        users.setdefault(model, set()).add(consumer)
    grouped: dict[str, list[Row]] = {}
    for r in rows:
        grouped.setdefault(r.name, []).append(r)
    out = []
    for name, versions in grouped.items():
        latest = versions[-1]
        released = next((v for v in versions if v.status == "released"), None)
        if released is not None:
            status, reason = ("stale", released.stale_reason) if released.stale else ("released", None)
        elif all(v.status == "retired" for v in versions):
            status, reason = "retired", None
        else:
            status, reason = latest.status, latest.stale_reason if latest.stale else None
        gate = last_gate.get(name)
        if gate is None and latest.status in _PASSED:
            gate = (latest.version, "gated_passed")
        out.append(
            ModelSummary(
                name=name,
                versions=len(versions),
                latest_version=latest.version,
                latest_status=latest.status,
                released_version=None if released is None else released.version,
                status=status,
                stale_reason=reason,
                consumers=sorted(users.get(name, ())),
                last_gate=None if gate is None else ("passed" if gate[1] == "gated_passed" else "failed"),
                last_gate_version=None if gate is None else gate[0],
            )
        )
    return out
