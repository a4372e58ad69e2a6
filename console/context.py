"""What every request handler shares: the registry (opened lazily, so a registry that is down gives 503
pages and the console recovers when it is back), the templates, the session codec and the graph renderer."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from cascade_registry import Registry, RegistryUnavailableError
from console.graph import GraphRenderer
from console.sessions import Session, SessionCodec
from console.settings import ConsoleSettings
from console.views import fmt

__all__ = ["Console"]

T = TypeVar("T")

_HERE = Path(__file__).resolve().parent


class Console:
    def __init__(self, settings: ConsoleSettings, registry: Registry | None = None) -> None:
        self.settings = settings
        self._registry = registry
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self.sessions = SessionCodec(
            settings.secret or secrets.token_urlsafe(32), settings.session_minutes * 60
        )
        self.graphs = GraphRenderer(settings.dot)
        self.env = Environment(
            loader=FileSystemLoader(_HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            auto_reload=False,
        )
        self.env.filters["fmt"] = fmt
        self.env.filters["when"] = lambda d: "-" if d is None else d.strftime("%Y-%m-%d %H:%M:%S")

    @property
    def registry(self) -> Registry:
        with self._lock:
            if self._registry is None:
                self._registry = Registry.open(self.settings.registry_url)
            return self._registry

    def cached(self, key: tuple, fn: Callable[[], T]) -> T:
        """``fn()`` computed once per registry generation (any write anywhere bumps it), so a page after a
        change is fresh and repeated pages skip the whole-registry reads."""
        full = (self.registry.generation(), *key)
        with self._lock:
            if full in self._cache:
                self._cache.move_to_end(full)
                return self._cache[full]
        value = fn()
        with self._lock:
            self._cache[full] = value
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        return value

    def drop_registry(self, error: RegistryUnavailableError) -> None:
        """Forget a registry that failed, so the next request opens it again."""
        with self._lock:
            if self._registry is not None and self.settings.registry_url is not None:
                self._registry.close()
                self._registry = None

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()

    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        session: Session = request.state.session
        html = self.env.get_template(template).render(
            request=request, session=session, actions=self.settings.actions, **values
        )
        return HTMLResponse(html, status_code=status)
