"""console: the registry's web console (``lockgate console``), server-rendered with Starlette + Jinja2.

It imports only :mod:`cascade_registry`; every action goes through the same :class:`Registry` methods as the
CLI, with the logged-in console user as the audit log's actor. :func:`create_app` and
:class:`ConsoleSettings` load on first use, so ``lockgate console --help`` imports no web stack.

    app = create_app(ConsoleSettings(registry_url="reg.db", actions=True))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from console.app import create_app as create_app
    from console.settings import ConsoleSettings as ConsoleSettings

_LAZY = {"create_app": "app", "ConsoleSettings": "settings"}
__all__ = ["ConsoleSettings", "create_app"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'console' has no attribute {name!r}")
    return getattr(importlib.import_module(f"console.{module}"), name)
