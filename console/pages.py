"""The read-only pages: models, a model, a version (card, gate report, diff), images, cascade, consumers
and keys, the audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from cascade_registry import GateError, NotFoundError
from cascade_registry.artifacts import ModelRef
from console.context import Console
from console.errors import ConsoleError, bad_request
from console.files import bundle_image, image_names
from console.graph import GraphError, cascade_dot, neighbourhood
from console.views import card_sections, diff_cards

__all__ = ["Pages"]

PAGE_SIZE = 100
AUDIT_PAGE = 50
CONSUMER_PAGE = 50
MAX_PARAM = 100


def _param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > MAX_PARAM:
        raise bad_request(
            f"the {name!r} parameter is {len(value)} characters long", f"use at most {MAX_PARAM}"
        )
    return value.strip()


def _int(request: Request, name: str, default: int | None) -> int | None:
    value = _param(request, name)
    if value is None:
        return default
    if not value.isdigit() or len(value) > 12:
        raise bad_request(f"the {name!r} parameter must be a positive whole number, got {value[:20]!r}")
    return int(value)


def _ref(request: Request) -> ModelRef:
    name, version = request.path_params["name"], request.path_params["version"]
    if not version.isdigit() or len(version) > 9 or int(version) < 1:
        raise ConsoleError(
            404, "Not found", f"{name[:64]}:{version[:20]} is not a version", "versions are 1, 2, ..."
        )
    try:
        return ModelRef(name=name, version=int(version))
    except ValueError:
        raise ConsoleError(404, "Not found", f"no model named {name[:64]!r} is registered") from None


class Pages:
    def __init__(self, console: Console) -> None:
        self.c = console

    def models(self, request: Request) -> HTMLResponse:
        query = _param(request, "q")
        page = max(_int(request, "page", 1) or 1, 1)
        rows = self.c.cached(("summaries",), self.c.registry.summaries)
        if query:
            rows = [r for r in rows if query.lower() in r.name]
        pages = max(1, -(-len(rows) // PAGE_SIZE))
        shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return self.c.render(
            request, "models.html", rows=shown, total=len(rows), q=query or "", page=page, pages=pages
        )

    def model(self, request: Request) -> HTMLResponse:
        name = request.path_params["name"]
        versions = self.c.registry.versions(name)
        return self.c.render(request, "model.html", name=name, versions=versions)

    def version(self, request: Request) -> HTMLResponse:
        reg = self.c.registry
        ref = _ref(request)
        info = reg.get(ref)
        released = next((v for v in reg.versions(ref.name) if v.status == "released"), None)
        try:
            gate, gate_error = reg.gate_report(ref), None
        except GateError as e:
            gate, gate_error = None, str(e)
        diff = diff_cards(info.card, released.card) if released and released.ref != info.ref else []
        return self.c.render(
            request,
            "version.html",
            info=info,
            card=info.card,
            history=reg.transitions(ref),
            released=released,
            gate=gate,
            gate_error=gate_error,
            sections=card_sections(info.card),
            diff=diff,
            images=image_names(info),
            impact=self.c.cached(("impact", ref.name), lambda: reg.impact(ref.name)),
            curves=info.card.details.get("learning_curves"),
        )

    def image(self, request: Request) -> Response:
        info = self.c.registry.get(_ref(request))
        data = bundle_image(info, request.path_params["filename"])
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})

    def cascade(self, request: Request) -> HTMLResponse:
        reg = self.c.registry
        focus = _param(request, "focus")
        rows = self.c.cached(("cascade",), reg.cascade)
        names = {n for n, _ in rows.status} | set(rows.kinds)
        if focus is not None and focus not in names:
            raise NotFoundError(f"no model or consumer named {focus[:64]!r} in the cascade", "pick one below")
        keep = neighbourhood(rows, focus) if focus else None
        count = len(keep) if keep is not None else len(names)
        svg, error, table = None, None, []
        if count > self.c.settings.max_graph_nodes:
            error = f"the cascade has {count} nodes; choose a model to draw the part around it"
        else:
            dot, table = cascade_dot(rows, keep)
            try:
                svg = self.c.graphs.svg((reg.generation(), focus), dot)
            except GraphError as e:
                error = str(e)
        return self.c.render(request, "cascade.html", svg=svg, error=error, table=table, focus=focus or "")

    def consumers(self, request: Request) -> HTMLResponse:
        reg = self.c.registry
        everyone = self.c.cached(("consumers",), reg.consumers)
        page = max(_int(request, "page", 1) or 1, 1)
        shown = everyone[(page - 1) * CONSUMER_PAGE : page * CONSUMER_PAGE]
        keys = self.c.cached(("keys",), reg.keys_by_consumer)
        names = {c.name for c in shown}
        declared: dict[str, list] = {}
        for d in self.c.cached(("declarations",), reg.declarations):
            if d.consumer in names:
                declared.setdefault(d.consumer, []).append(d)
        return self.c.render(
            request,
            "consumers.html",
            consumers=shown,
            keys=keys,
            declared=declared,
            page=page,
            pages=max(1, -(-len(everyone) // CONSUMER_PAGE)),
        )

    def audit(self, request: Request) -> HTMLResponse:
        filters = {k: _param(request, k) for k in ("subject", "actor", "action")}
        before = _int(request, "before", None)
        entries = self.c.registry.audit_page(**filters, before=before, limit=AUDIT_PAGE + 1)
        more = len(entries) > AUDIT_PAGE
        entries = entries[:AUDIT_PAGE]
        return self.c.render(
            request,
            "audit.html",
            entries=entries,
            filters={k: v or "" for k, v in filters.items()},
            next_before=entries[-1].id if more and entries else None,
        )
