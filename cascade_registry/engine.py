"""Connections to the registry database: engine set-up per backend, one transaction per operation with
retry on lock contention, and Alembic migrations run automatically on open.

SQLite (the default, one file): WAL journal, a 30 s busy timeout, write transactions that take the write
lock up front (``BEGIN IMMEDIATE``) and a retry loop, so concurrent writers wait instead of failing with
"database is locked". PostgreSQL: every write transaction first bumps the generation row, which both
serializes writers and tells readers in other processes that something changed.
"""

from __future__ import annotations

import ast
import os
import random
import sqlite3
import time
import weakref
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError

from cascade_registry.errors import ConflictError, InvalidInputError, RegistryUnavailableError
from cascade_registry.schema import registry_state
from cascade_registry.settings import DEFAULT_PATH, ENV_VAR

__all__ = ["DEFAULT_PATH", "Database", "resolve_url"]

T = TypeVar("T")
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 7_461_003  # arbitrary advisory-lock key: one migrator at a time
_RETRY_SECONDS = 60.0
_WRITE = "registry_write"


def resolve_url(url: str | None) -> str:
    """``None`` -> the default SQLite file; a bare path -> a SQLite file; ``postgresql://`` -> psycopg 3."""
    if url is None or not url.strip():
        return f"sqlite:///{DEFAULT_PATH}"
    url = url.strip()
    if "://" not in url:
        return f"sqlite:///{url}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _no_registry(where: str) -> RegistryUnavailableError:
    return RegistryUnavailableError(
        f"no registry at {where}",
        f"pass --registry-url or set {ENV_VAR} to an existing registry, or create this one with a "
        "write command such as 'lockgate registry register BUNDLE'",
    )


def _is_retryable(exc: DBAPIError) -> bool:
    text_ = str(exc.orig).lower()
    if "database is locked" in text_ or "database is busy" in text_ or "database table is locked" in text_:
        return True
    return getattr(exc.orig, "sqlstate", None) in {"40001", "40P01"}  # serialization failure, deadlock


@lru_cache(maxsize=1)
def _head_revision() -> str:
    """The newest migration: the one revision no other migration names as its ``down_revision``.

    Read from the migration files' two assignments, so that opening an up-to-date registry (every
    gateway worker, every read-only command) never imports alembic (~11 MB of RSS and ~1 s per process;
    tests/cascade_registry checks this equals alembic's own head)."""
    revisions: dict[str, str | None] = {}
    for path in sorted((_MIGRATIONS / "versions").glob("*.py")):
        values = {
            target.id: node.value.value
            for node in ast.parse(path.read_text(encoding="utf-8")).body
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant)
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision")
        }
        if "revision" in values:
            revisions[values["revision"]] = values.get("down_revision")
    (head,) = set(revisions) - set(revisions.values())
    return head


def _set_wal(cursor: sqlite3.Cursor) -> None:
    """Switch a new database file to WAL; when several processes create it at once the switch can meet a
    lock the busy handler does not wait for, so retry it here."""
    deadline = time.monotonic() + _RETRY_SECONDS
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() > deadline:
                raise
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 0.25)


def _dispose_in_forked_children(engine: Engine) -> None:
    """A forked child (e.g. a server worker) must not reuse the parent's pooled connections."""
    ref = weakref.ref(engine)

    def reset() -> None:
        alive = ref()
        if alive is not None:
            alive.dispose(close=False)

    os.register_at_fork(after_in_child=reset)


class Database:
    """An engine plus the transaction discipline of the registry. Build with :meth:`connect`."""

    def __init__(self, engine: Engine, display_url: str) -> None:
        self.engine = engine
        self.display_url = display_url
        #: True when :meth:`connect` created the registry (an empty database or a new SQLite file)
        self.created = False

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @classmethod
    def connect(cls, url: str | None, create: bool = True) -> Database:
        """Create the engine, check the database answers, and migrate it to the current schema.

        ``create=False`` (read-only commands, the gateway): a missing SQLite file or a database without
        a registry raises :class:`RegistryUnavailableError` instead of being created."""
        resolved = resolve_url(url)
        try:
            parsed = make_url(resolved)
        except ArgumentError:
            raise InvalidInputError(
                f"registry URL {resolved!r} is not a database URL",
                "use a path, sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB",
            ) from None
        display = parsed.render_as_string(hide_password=True)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            engine = cls._sqlite_engine(parsed, create)
        elif backend == "postgresql":
            engine = create_engine(
                parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5}, pool_size=5, max_overflow=5
            )
        else:
            raise InvalidInputError(
                f"registry URL {display!r} uses {backend!r}", "the registry supports sqlite and postgresql"
            )
        db = cls(engine, display)
        _dispose_in_forked_children(engine)
        try:
            db._migrate(create)
        except DBAPIError as e:
            engine.dispose()
            first = str(e.orig).strip().splitlines()[0] if str(e.orig).strip() else type(e.orig).__name__
            fix = (
                f"check --registry-url / {ENV_VAR}: it must name a lockgate registry file"
                if backend == "sqlite"
                else f"check --registry-url / {ENV_VAR} and that the database server is running"
            )
            what = "open the registry file" if backend == "sqlite" else "reach the registry database"
            problem = f"cannot {what} {display}: {first}"
            raise RegistryUnavailableError(problem, fix) from None
        except RegistryUnavailableError:
            engine.dispose()
            raise
        return db

    @staticmethod
    def _sqlite_engine(parsed, create: bool) -> Engine:
        database = parsed.database or ""
        if not database or database == ":memory:":
            raise InvalidInputError(
                "an in-memory SQLite registry cannot be shared", "give a file path, e.g. sqlite:///reg.db"
            )
        path = Path(database)
        if path.is_dir():
            raise InvalidInputError(
                f"the registry path {path} is a directory, not a SQLite file",
                f"name a file, e.g. --registry-url {path / 'registry.db'}",
            )
        if not create and not path.is_file():
            raise _no_registry(str(path.resolve()))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RegistryUnavailableError(
                f"cannot create the directory for the registry file {path}: {e.strerror}",
                "choose a writable location with --registry-url",
            ) from None
        engine = create_engine(parsed, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:  # pragma: no branch - sqlite only
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            _set_wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get(_WRITE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    # ------------------------------------------------------------------------------ transactions
    def _run(self, fn: Callable[[Connection], T], write: bool, bump: bool = True) -> T:
        deadline = time.monotonic() + _RETRY_SECONDS
        delay = 0.005
        while True:
            try:
                with self.engine.connect() as conn:
                    if write:
                        conn.execution_options(**{_WRITE: True})
                    with conn.begin():
                        if write and bump:
                            conn.execute(
                                update(registry_state)
                                .where(registry_state.c.id == 1)
                                .values(generation=registry_state.c.generation + 1)
                            )
                        return fn(conn)
            except IntegrityError as e:
                # the store checks for clashes before writing; this is the database's last word on a race
                first = str(e.orig).strip().splitlines()[0]
                raise ConflictError(
                    f"the change clashes with what the registry holds ({first})",
                    "re-read the registry and retry",
                ) from None
            except OperationalError as e:
                if not _is_retryable(e) or time.monotonic() > deadline:
                    first = (str(e.orig).strip().splitlines() or [type(e.orig).__name__])[0]
                    raise RegistryUnavailableError(
                        f"the registry database {self.display_url} failed: {first}",
                        "check that the database server is running and reachable, then retry",
                    ) from e
            except DBAPIError as e:
                if not _is_retryable(e) or time.monotonic() > deadline:
                    raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.25)

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction (generation bumped first); retried on lock contention."""
        return self._run(fn, write=True)

    def append(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction that leaves the generation alone: for rows that do not change
        what is served (captured predictions, labels), so the gateways do not reload on each."""
        return self._run(fn, write=True, bump=False)

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one read transaction."""
        return self._run(fn, write=False)

    def generation(self) -> int:
        return self.read(lambda c: int(c.execute(select(registry_state.c.generation)).scalar_one()))

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------------------ migrations
    def _current_revision(self) -> str | None:
        with self.engine.connect() as conn, conn.begin():
            try:
                with conn.begin_nested():
                    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except DBAPIError:
                return None

    def _migrate(self, create: bool) -> None:
        def upgrade(conn: Connection) -> None:
            from alembic import command  # alembic (~11 MB, ~1 s): only when the schema must change
            from alembic.config import Config

            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            cfg = Config()
            cfg.set_main_option("script_location", str(_MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

        deadline = time.monotonic() + _RETRY_SECONDS
        while True:
            try:
                current = self._current_revision()
                if current == _head_revision():
                    return
                if current is None and not create:
                    raise _no_registry(self.display_url)
                with self.engine.connect() as conn:
                    conn.execution_options(**{_WRITE: True})
                    with conn.begin():
                        upgrade(conn)
                self.created = current is None
                return
            except DBAPIError as e:
                if not _is_retryable(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05 * (1 + random.random()))
