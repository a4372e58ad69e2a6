"""Settings of the ``lockgate console`` entry point (environment ``LOCKGATE_CONSOLE_<FIELD>``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ConsoleSettings"]


class ConsoleSettings(BaseSettings):
    """Built once by the CLI (or a test) and passed to :func:`console.create_app`."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_CONSOLE_", extra="ignore")

    registry_url: str | None = Field(
        None, description="the registry database (default .lockgate/registry.db)"
    )
    host: str = "127.0.0.1"
    port: int = Field(8700, ge=1, le=65535)
    actions: bool = Field(False, description="read-only unless true: then logged-in operators may act")
    session_minutes: float = Field(60.0, gt=0, description="a login lasts this long, then expires")
    secret: str | None = Field(None, description="signs session cookies; random per process when unset")
    secure_cookies: bool = Field(False, description="mark cookies Secure (set behind HTTPS)")
    dot: str = Field("dot", description="the Graphviz executable that draws the cascade")
    max_graph_nodes: int = Field(300, ge=1, description="larger cascades are drawn around one model")
