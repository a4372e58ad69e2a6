"""Settings of the ``lockgate registry`` entry point (environment ``LOCKGATE_REGISTRY_<FIELD>``)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["RegistrySettings"]


class RegistrySettings(BaseSettings):
    """``LOCKGATE_REGISTRY_URL`` (default: the SQLite file .lockgate/registry.db) and
    ``LOCKGATE_REGISTRY_ACTOR`` (default: the login name) — who is recorded in the audit log."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_REGISTRY_", extra="ignore")

    url: str | None = None
    actor: str | None = None
