"""The HTTP transport: a lean Starlette app over the data plane (BentoML mounts it in ``service.py``).

Handlers only read headers and the body (with a size limit), call the data plane, and turn
:class:`ServingError` into the JSON error answer via ``errors.py``. Nothing here parses a payload.
The caller's key is checked before the body is read. Every error answer is built from a new exception
object (a shared one would keep each failed request's traceback, frames and body alive).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .access import OpenAccess, RegistryAccess
from .capture import Capture, CaptureSink, RegistrySink
from .catalog import CanarySource, RegistrySource
from .dataplane import DataPlane
from .errors import (
    AuthError,
    NotFoundError,
    PayloadTooLargeError,
    ServingError,
    UnsupportedMediaTypeError,
    error_body,
    error_headers,
    http_status,
    v2_error_body,
)
from .feedback import safe_request_id, store_feedback
from .metrics import exposition_registry
from .openapi import OPENAPI_JSON, api_page
from .settings import ServeSettings

__all__ = ["build_app", "open_dataplane"]

log = logging.getLogger("lockgate.serving")
JSON = "application/json"


def open_capture(settings: ServeSettings) -> Capture:
    """The capture of the settings: into the registry (or ``capture_registry``), Parquet files, or off
    (also in canary mode without a capture registry: a canary has no registry)."""
    sink: CaptureSink | None = None
    if settings.capture_store == "parquet" and settings.capture_dir is not None:
        # pyarrow adds about 50 MB of RSS to every worker: loaded only when the Parquet store is chosen
        # (not an import cycle: serving.capture_parquet imports nothing of serving)
        from .capture_parquet import ParquetSink

        sink = ParquetSink(settings.capture_dir, settings.capture_file_rows, settings.capture_files)
    elif settings.capture_store == "registry" and (settings.canary is None or settings.capture_registry):
        sink = RegistrySink(settings.capture_registry or settings.registry_url)
    return Capture(
        sink,
        settings.capture_rate,
        settings.capture_rates,
        queue_rows=settings.capture_queue_rows,
        rows_per_minute=settings.capture_rows_per_minute,
        bytes_per_minute=settings.capture_bytes_per_minute,
    )


def open_dataplane(settings: ServeSettings) -> DataPlane:
    """Canary (one bundle, no auth) or the registry named by the settings."""
    if settings.canary is not None:
        return DataPlane(settings, CanarySource(settings.canary), OpenAccess(), open_capture(settings))
    from cascade_registry import Registry

    registry = Registry.open(settings.registry_url, poll_seconds=settings.poll_interval, create=False)
    access = RegistryAccess(
        registry,
        settings.access_cache_size,
        settle_seconds=settings.poll_interval + 0.2,
        ttl_seconds=settings.access_cache_seconds,
        fail_closed_after=settings.fail_closed_after_polls,
    )
    return DataPlane(settings, RegistrySource(registry), access, open_capture(settings))


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, allow_nan=False, default=str).encode(), status, media_type=JSON)


def _error(e: ServingError, v2: bool = False, extra: dict[str, str] | None = None) -> Response:
    body = v2_error_body(e) if v2 else error_body(e)
    headers = {k.decode(): v.decode() for k, v in error_headers(e)} | (extra or {})
    return Response(body, http_status(e), headers=headers or None, media_type=JSON)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])  # ASGI header names are lower-case bytes


def _request_id(headers: dict[bytes, bytes]) -> str:
    """The caller's X-Request-Id (a bounded safe token, else 422), or 32 new random hex digits
    (``os.urandom``: 0.4 us against 2.2 us for ``uuid.uuid4().hex``, the same shape)."""
    value = headers.get(b"x-request-id")
    if value is None:
        return os.urandom(16).hex()
    return safe_request_id(value.decode("latin-1"))


def _api_key(headers: dict[bytes, bytes]) -> str | None:
    """The Bearer token, None without an Authorization header; a clear 401 for any other shape."""
    value = headers.get(b"authorization")
    if not value:
        return None
    scheme, _, key = value.decode("latin-1").strip().partition(" ")
    key = key.strip()
    if scheme.lower() == "bearer" and key:
        return key
    if not key and scheme.startswith("lg_"):
        raise AuthError(
            "the Authorization header holds a bare key without the word 'Bearer'",
            "send 'Authorization: Bearer <key>' (add 'Bearer ' before the key)",
            code="bad_auth_scheme",
        )
    raise AuthError(
        f"the Authorization header uses the scheme {scheme[:20]!r}; this gateway takes Bearer keys",
        "send 'Authorization: Bearer <key>'",
        code="bad_auth_scheme",
    )


async def _body(headers: dict[bytes, bytes], receive: Receive, limit: int, allowed: tuple[str, ...]) -> bytes:
    """The request body, refusing a wrong content type (415) or more than ``limit`` bytes (413)."""
    media = headers.get(b"content-type", b"").decode("latin-1").split(";", 1)[0].strip().lower()
    if media not in allowed:
        raise UnsupportedMediaTypeError(
            f"content type {media or '(none)'!r} is not accepted here",
            f"send the body as {allowed[0]} with the header 'Content-Type: {allowed[0]}'",
        )
    length = headers.get(b"content-length")
    if length is not None and length.isascii() and length.isdigit() and int(length) > limit:
        raise PayloadTooLargeError(
            f"the body is {int(length)} bytes; the limit is {limit}",
            "send fewer rows per request",
            code="body_too_large",
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            raise PayloadTooLargeError("the client disconnected while sending the body", "retry")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                f"the body exceeds the limit of {limit} bytes",
                "send fewer rows per request",
                code="body_too_large",
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _AsgiEndpoint:
    """Makes Starlette route to a bare ASGI function (it wraps plain functions as request handlers)."""

    def __init__(self, fn: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.fn = fn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.fn(scope, receive, send)


async def _send_json(
    send: Send, status: int, payload: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + extra if extra else headers}
    )
    await send({"type": "http.response.body", "body": payload})


async def _send_error(send: Send, e: ServingError, request_id: bytes | None = None) -> None:
    extra = error_headers(e) + ([(b"x-request-id", request_id)] if request_id else [])
    await _send_json(send, http_status(e), error_body(e), extra)


def _internal() -> ServingError:
    return ServingError(
        "internal error while handling the request", "retry; report it if it persists", code="internal"
    )


def build_app(
    settings_factory: Callable[[], ServeSettings] = ServeSettings, worker: int | None = None
) -> Starlette:
    """The gateway's Starlette app; the data plane is built in its lifespan from ``settings_factory()``.
    ``worker`` is this process's index among the server's workers (1, 2, ...; shown by ``/readyz``)."""
    state: dict[str, DataPlane] = {}
    exposition: dict[str, CollectorRegistry] = {"registry": REGISTRY}

    def plane() -> DataPlane:
        return state["plane"]

    async def predict_asgi(scope: Scope, receive: Receive, send: Send) -> None:
        """POST /predict as a bare ASGI callable: no Request/Response objects on the hot path."""
        dp = plane()
        headers = _headers(scope)
        rid = b""
        try:
            request_id = _request_id(headers)
            rid = request_id.encode()
            who = await dp.identify(_api_key(headers))  # before a byte of the body is read
            body = await _body(headers, receive, dp.settings.max_body_bytes, (JSON,))
        except ServingError as e:
            dp.count_edge_error(e)
            return await _send_error(send, e, rid)
        try:
            answer = await dp.predict(who, body, request_id)
        except ServingError as e:
            return await _send_error(send, e, rid)
        except Exception:
            log.exception("unexpected error on POST /predict (request %s)", request_id)
            return await _send_error(send, _internal(), rid)
        await _send_json(send, 200, answer, [(b"x-request-id", rid)])

    async def v2_infer(request: Request) -> Response:
        dp = plane()
        params = request.path_params
        headers = _headers(request.scope)
        rid: dict[str, str] = {}
        try:
            request_id = _request_id(headers)
            rid["x-request-id"] = request_id
            who = await dp.identify(_api_key(headers))
            body = await _body(
                headers, request.receive, dp.settings.max_body_bytes, (JSON, "application/octet-stream", "")
            )
        except ServingError as e:
            dp.count_edge_error(e)
            return _error(e, v2=True, extra=rid)
        try:
            answer = await dp.infer_v2(
                who,
                params["name"],
                params.get("version"),
                body,
                (headers.get(b"inference-header-content-length") or b"").decode("latin-1") or None,
                request_id,
            )
        except ServingError as e:
            return _error(e, v2=True, extra=rid)
        return Response(answer, media_type=JSON, headers=rid)

    async def feedback(request: Request) -> Response:
        """POST /feedback: true labels for answered requests (a declared consumer's key)."""
        dp = plane()
        headers = _headers(request.scope)
        try:
            who = await dp.identify(_api_key(headers))
            body = await _body(headers, request.receive, dp.settings.max_body_bytes, (JSON,))
            return Response(await store_feedback(dp, who, body), media_type=JSON)
        except ServingError as e:
            return _error(e)

    async def models(request: Request) -> Response:
        return _json(plane().models())

    async def model_detail(request: Request) -> Response:
        try:
            key = _api_key(_headers(request.scope))
            return _json(
                await plane().describe(key, request.path_params["name"], request.query_params.get("version"))
            )
        except ServingError as e:
            return _error(e)

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready, body = plane().readiness()
        if worker is not None:
            body["worker"] = worker
        return _json(body, 200 if ready else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(exposition["registry"]), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        return Response(OPENAPI_JSON, media_type=JSON)

    async def page(request: Request) -> Response:
        return Response(api_page(), media_type="text/html; charset=utf-8")

    async def v2_server(request: Request) -> Response:
        return _json({"name": "lockgate", "version": "0.1.0", "extensions": ["binary_tensor_data"]})

    async def v2_live(request: Request) -> Response:
        return _json({"live": True})

    async def v2_ready(request: Request) -> Response:
        ready, _ = plane().readiness()
        return _json({"ready": ready}, 200 if ready else 503)

    async def v2_model(request: Request) -> Response:
        try:
            p = request.path_params
            key = _api_key(_headers(request.scope))
            return _json(await plane().v2_metadata(key, p["name"], p.get("version")))
        except ServingError as e:
            return _error(e, v2=True)

    async def v2_model_ready(request: Request) -> Response:
        try:
            p = request.path_params
            plane().v2_ready(p["name"], p.get("version"))
            return _json({"name": p["name"], "ready": True})
        except ServingError as e:
            return _error(e, v2=True)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(
            NotFoundError(
                f"no route {request.method} {request.url.path}",
                "see GET /openapi.json for the routes",
                code="no_route",
            )
        )

    async def not_allowed(request: Request, exc: Exception) -> Response:
        e = ServingError(
            f"method {request.method} is not allowed on {request.url.path}",
            "see GET /openapi.json",
            code="method_not_allowed",
        )
        return Response(error_body(e), 405, media_type=JSON)

    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return Response(error_body(_internal()), 500, media_type=JSON)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings = settings_factory()
        dp = open_dataplane(settings)
        state["plane"] = dp
        exposition["registry"] = exposition_registry(settings.metrics_dir)
        await dp.start()
        # Everything loaded so far lives for the whole process: keep it out of full GC passes, and make
        # full passes rare. Each one walks every long-lived object (BentoML's timeout middleware keeps
        # a timer per request alive for the whole timeout) and stalls all requests for 50-100 ms; the
        # young generations still collect as usual (see benchmarks/serving.py).
        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, dp.settings.gc_full_collection_every)
        try:
            yield
        finally:
            await dp.stop()

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/docs", page, methods=["GET"]),
        Route("/docs.json", openapi, methods=["GET"]),
        Route("/predict", _AsgiEndpoint(predict_asgi), methods=["POST"]),
        Route("/feedback", feedback, methods=["POST"]),
        Route("/models", models, methods=["GET"]),
        Route("/models/{name}", model_detail, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/livez", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/v2", v2_server, methods=["GET"]),
        Route("/v2/health/live", v2_live, methods=["GET"]),
        Route("/v2/health/ready", v2_ready, methods=["GET"]),
        Route("/v2/models/{name}", v2_model, methods=["GET"]),
        Route("/v2/models/{name}/ready", v2_model_ready, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}", v2_model, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/ready", v2_model_ready, methods=["GET"]),
        Route("/v2/models/{name}/infer", v2_infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", v2_infer, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_allowed, Exception: crashed},
    )
    app.state.planes = state
    app.state.predict_asgi = predict_asgi  # service.py calls it straight for POST /predict
    return app


#: the paths this app owns; service.py routes them straight here (``/`` and ``/docs``: exact matches)
OWN_PREFIXES = (
    "/predict",
    "/feedback",
    "/models",
    "/healthz",
    "/livez",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/v2",
)
