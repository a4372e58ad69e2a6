"""Alembic migrations of the registry schema, run programmatically by :mod:`cascade_registry.engine`."""
