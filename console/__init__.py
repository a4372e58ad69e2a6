"""console: the registry's web console (``lockgate console``), server-rendered with Starlette + Jinja2.

It imports only :mod:`cascade_registry`; every action goes through the same :class:`Registry` methods as the
CLI, with the logged-in console user as the audit log's actor.

    app = create_app(ConsoleSettings(registry_url="reg.db", actions=True))
"""

from __future__ import annotations

from console.app import create_app
from console.settings import ConsoleSettings

__all__ = ["ConsoleSettings", "create_app"]
