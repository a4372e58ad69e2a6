"""The BentoML 1.4 service: the only module of lockgate that imports BentoML.

``bentoml serve serving.service:Gateway`` (what ``lockgate serve`` runs) starts ``workers`` processes
(``LOCKGATE_SERVE_WORKERS``, default one per core) sharing one listening socket, each holding the lean
Starlette app of ``app.py``, mounted with ``@bentoml.asgi_app``: BentoML runs its lifespan (the
data plane loads models and starts the registry poller there) and packages it (``bentofile.yaml``).

What is switched off, and why (profiled in ``benchmarks/serving.py``): BentoML's access log and its
HTTP metrics middleware (we export our own, bounded, metrics), OpenTelemetry spans on our paths
(``tracing.excluded_urls``), and BentoML's router in front of our paths: a small dispatch middleware
sends ``/predict``, ``/v2/...``, ``/models``, ``/healthz``, ``/readyz``, ``/metrics`` straight to our
app (BentoML's own ``/readyz`` and ``/metrics`` would otherwise shadow ours), and ``/``, ``/docs``,
``/docs.json`` too, so the browser page is lockgate's own API (BentoML's Swagger UI loads a
third-party script and lists only its system routes). Everything stays behind BentoML's timeout
middleware. Below the ASGI app, uvicorn runs :class:`~serving.connections.GuardedHttpProtocol`.
"""

from __future__ import annotations

import logging

import bentoml
from uvicorn.config import HTTP_PROTOCOLS

from .app import OWN_PREFIXES, build_app
from .connections import GuardedHttpProtocol
from .settings import ServeSettings

__all__ = ["Gateway", "gateway_app"]

logging.getLogger("lockgate.serving").setLevel(logging.INFO)  # loads, swaps and refusals are logged
SETTINGS = ServeSettings()
# BentoML builds uvicorn's Config itself (http="auto"); the header timeout and the per-client connection
# cap live in the protocol, so "auto" names ours (a subclass of uvicorn's httptools protocol).
GuardedHttpProtocol.configure(SETTINGS.header_timeout, SETTINGS.max_connections_per_client)
HTTP_PROTOCOLS["auto"] = "serving.connections:GuardedHttpProtocol"
# BentoML sets the worker's index (1..workers) before it imports this module; /readyz reports it
gateway_app = build_app(lambda: SETTINGS, worker=bentoml.server_context.worker_index)
predict_asgi = gateway_app.state.predict_asgi


class _Dispatch:
    """ASGI middleware: our paths go straight to the gateway app; anything else to BentoML."""

    def __init__(self, app) -> None:  # noqa: ANN001 - ASGI app
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI signature
        if scope["type"] == "http":
            path = scope["path"]
            if path == "/predict" and scope["method"] == "POST":
                return await predict_asgi(scope, receive, send)  # the hot path: no router at all
            if path.startswith(OWN_PREFIXES) or path == "/":
                return await gateway_app(scope, receive, send)
        await self.app(scope, receive, send)


@bentoml.asgi_app(gateway_app, path="/")
@bentoml.service(
    name="lockgate-gateway",
    workers=SETTINGS.workers,
    traffic={"timeout": SETTINGS.timeout},
    metrics={"enabled": False},
    logging={"access": {"enabled": False}},
    tracing={"excluded_urls": [p.lstrip("/") for p in OWN_PREFIXES]},
)
class Gateway:
    """Serves every released, gate-bound model of the registry (or one canary bundle)."""

    def __is_ready__(self) -> bool:
        plane = gateway_app.state.planes.get("plane")
        return bool(plane is not None and plane.readiness()[0])


Gateway.add_asgi_middleware(_Dispatch)
