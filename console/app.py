"""The Starlette application: routes, sessions, security headers, and error pages (never a traceback)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cascade_registry import Registry, RegistryError, RegistryUnavailableError
from console.actions import Actions
from console.context import _HERE, Console
from console.errors import ConsoleError, status_of, title_of
from console.pages import Pages
from console.sessions import COOKIE, Session
from console.settings import ConsoleSettings

__all__ = ["create_app"]

log = logging.getLogger("console")
MAX_QUERY = 2048
_CSP = (
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def _middleware(console: Console):
    async def dispatch(request: Request, call_next: Any) -> Response:
        session = console.sessions.loads(request.cookies.get(COOKIE))
        request.state.session = session
        if len(request.url.query) > MAX_QUERY or len(request.url.path) > MAX_QUERY:
            response = _page(
                console, request, ConsoleError(414, "Address too long", "the address is too long")
            )
        else:
            response = await call_next(request)
        final: Session = request.state.session
        if final.dirty:
            response.set_cookie(
                COOKIE,
                console.sessions.dumps(final),
                httponly=True,
                samesite="strict",
                secure=console.settings.secure_cookies,
            )
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return dispatch


def _page(console: Console, request: Request, error: ConsoleError) -> Response:
    if not hasattr(request.state, "session"):
        request.state.session = Session()
    return console.render(request, "error.html", status=error.status, error=error)


def create_app(settings: ConsoleSettings | None = None, registry: Registry | None = None) -> Starlette:
    """The console; ``registry`` (else ``settings.registry_url``, opened on first use)."""
    console = Console(settings or ConsoleSettings(), registry)
    pages, actions = Pages(console), Actions(console)

    async def registry_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RegistryError)
        if isinstance(exc, RegistryUnavailableError):
            console.drop_registry(exc)
        return _page(console, request, ConsoleError(status_of(exc), title_of(exc), exc.problem, exc.fix))

    async def console_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleError)
        return _page(console, request, exc)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return _page(
            console, request, ConsoleError(status, "Not found", f"no page at {request.url.path[:100]}")
        )

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("console: unexpected error on %s", request.url.path)
        return PlainTextResponse(
            "500 Internal Server Error: the console failed unexpectedly (details are in its log)",
            status_code=500,
        )

    routes = [
        Route("/", pages.models),
        Route("/healthz", lambda r: PlainTextResponse("ok")),
        Route("/models/{name}", pages.model),
        Route("/models/{name}/{version}", pages.version),
        Route("/models/{name}/{version}/files/{filename}", pages.image),
        Route("/cascade", pages.cascade),
        Route("/consumers", pages.consumers),
        Route("/audit", pages.audit),
        Route("/login", actions.login_page, methods=["GET"]),
        Route("/login", actions.login, methods=["POST"]),
        Route("/logout", actions.logout, methods=["POST"]),
        Route("/actions/release", actions.release, methods=["POST"]),
        Route("/actions/retire", actions.retire, methods=["POST"]),
        Route("/actions/declare", actions.declare, methods=["POST"]),
        Route("/actions/revoke-key", actions.revoke_key, methods=["POST"]),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=_middleware(console))],
        exception_handlers={
            RegistryError: registry_error,
            ConsoleError: console_error,
            404: not_found,
            405: not_found,
            Exception: crash,
        },
    )
    app.state.console = console
    return app
