"""Alembic environment, configured programmatically: the caller passes an open connection in
``config.attributes["connection"]`` (see :func:`cascade_registry.engine.migrate`)."""

from __future__ import annotations

from alembic import context

from cascade_registry.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached when someone runs the alembic CLI by hand
    raise RuntimeError("run migrations through cascade_registry.engine.migrate(), which passes a connection")

context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
