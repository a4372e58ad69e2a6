"""The gateway's OpenAPI document and its browser page, built once at import (never per request).

The answer's meaning is versioned: every ``/predict`` answer starts with ``"schema"`` (``ANSWER_SCHEMA``),
and ``PredictAnswer`` below is what that version means. The page at ``/`` is plain HTML rendered from
this document: no script, no third-party asset.
"""

from __future__ import annotations

import html
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from .predictor import ANSWER_SCHEMA

__all__ = ["OPENAPI", "OPENAPI_JSON", "api_page"]


class PredictBody(BaseModel):
    model: str = Field(description="model name (GET /models lists them)")
    version: int | None = Field(None, ge=1, description="omit for the released version")
    instances: list[dict[str, float | int | str | bool | None]] | None = Field(
        None,
        description="rows as objects keyed by column name, in any key order (send this or 'inputs'; "
        "models with categorical or boolean columns take only this): numeric columns take numbers, "
        "categorical columns strings (their levels), boolean columns true/false (or 'yes'/'no'). null or "
        "an absent key is a missing value, accepted where the card's column allows it (else 422 naming "
        "the column); an unknown key is a 422 unless the gateway runs with --allow-extra-columns; an "
        "unseen level follows the card's 'unknown' policy (error: 422; other: a warning in the answer). "
        "GET /models/{name} lists the columns with their kind, levels and missing policy.",
        examples=[[{"city": "Lyon", "age": 39, "owner": True, "income": None}]],
    )
    inputs: list[list[float] | dict[str, float]] | None = Field(
        None,
        description="all-numeric models only: rows, each a list of numbers in the card's feature order, or "
        "an object keyed by feature name; one row is still a list of rows: [[1.0, 2.0]]",
    )
    explain: bool = Field(
        False, description="true adds 'consume': prose on how to read the probabilities (off by default)"
    )


class UpstreamPin(BaseModel):
    """One upstream model the gateway ran first to compute this model's upstream features."""

    name: str
    version: int = Field(
        description="the upstream version actually used: the downstream's effective pin (the version it "
        "was trained or revalidated against), not necessarily the upstream's released version"
    )
    sha256: str = Field(description="sha256 of that upstream version's model.onnx")


class ModelBlock(BaseModel):
    """Who answered: enough to pin, audit and fetch the card; the rest is at ``card_url``."""

    name: str
    version: int
    sha256: str = Field(description="sha256 of model.onnx, bound to its signed gate verdict")
    calibration: Literal["none", "sigmoid", "isotonic", "temperature"] = Field(
        description="how the probabilities were calibrated"
    )
    threshold: float | None = Field(
        description="binary models: answer the positive class when its probability is at least this"
    )
    upstream: list[UpstreamPin] = Field(
        description="a composed model (a cascade): the pinned upstream versions run first, in the same "
        "process, on the same rows; empty for a model without upstreams"
    )
    card_url: str = Field(description="GET it with your key for classes, features, metrics, calibration")


class Prediction(BaseModel):
    label: str = Field(description="the most probable class")
    probabilities: dict[str, float] = Field(
        description="class -> calibrated probability (6 decimals; they sum to 1)"
    )
    warnings: list[str] = Field(description="e.g. a value far outside the training range")


class PredictAnswer(BaseModel):
    schema_: Literal["lockgate.predict/2"] = Field(
        alias="schema", description="the version of this answer's meaning"
    )
    model: ModelBlock
    consume: str | None = Field(None, description='only with "explain": true in the request')
    canary: bool | None = Field(None, description="present (true) only in canary mode")
    request_id: str = Field(
        description="this answer's id (also the X-Request-Id header): the caller's X-Request-Id if it sent a "
        "safe one, else 32 random hex digits; send it back with the true label to POST /feedback"
    )
    predictions: list[Prediction] = Field(description="one per input row, in order")


class FeedbackLabel(BaseModel):
    request_id: str = Field(description="the answer's request_id", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    row: int = Field(0, ge=0, description="the row's index in its request (0 for one row)")
    label: str = Field(description="the true class, as the model names it")


class FeedbackBatch(BaseModel):
    labels: list[FeedbackLabel] = Field(min_length=1, max_length=10_000)


class ErrorDetail(BaseModel):
    code: str
    message: str
    fix: str


class ErrorAnswer(BaseModel):
    error: ErrorDetail


def _document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (PredictBody, PredictAnswer, ErrorAnswer, FeedbackLabel, FeedbackBatch):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema

    def ref(name: str) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}

    errors = {
        str(code): {"description": text, **ref("ErrorAnswer")}
        for code, text in [
            (401, "no, unknown or revoked API key, or not sent as 'Bearer <key>'"),
            (403, "consumer not declared for the model"),
            (404, "unknown model or version"),
            (413, "body or batch too large"),
            (415, "not application/json"),
            (422, "invalid input"),
            (503, "the registry cannot be reached to check the key (see Retry-After)"),
        ]
    }
    simple = {"200": {"description": "JSON"}}
    keyed = {**simple, "401": errors["401"], "403": errors["403"], "404": errors["404"]}
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    version = [{"name": "version", "in": "path", "required": True, "schema": {"type": "integer"}}]
    request_id = {
        "name": "X-Request-Id",
        "in": "header",
        "required": False,
        "description": "your id for this request (1-64 of A-Z a-z 0-9 . _ -), echoed in the answer",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
    }
    one_or_batch = {
        "oneOf": [
            {"$ref": "#/components/schemas/FeedbackLabel"},
            {"$ref": "#/components/schemas/FeedbackBatch"},
        ]
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "lockgate gateway",
            "version": "0.1.0",
            "description": "Self-describing predictions from gated, released models.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/predict": {
                "post": {
                    "summary": "predict with the released version of a model",
                    "security": [{"bearer": []}],
                    "requestBody": {"required": True, **ref("PredictBody")},
                    "parameters": [request_id],
                    "responses": {
                        "200": {
                            "description": "predictions with the model's identity",
                            **ref("PredictAnswer"),
                        },
                        **errors,
                    },
                }
            },
            "/feedback": {
                "post": {
                    "summary": "true labels for answered requests, joined to the captured predictions made "
                    "for the same consumer (see docs/monitoring.md)",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": one_or_batch}},
                    },
                    "responses": {"200": {"description": '{"stored": n}'}, **errors},
                }
            },
            "/models": {"get": {"summary": "served models and their identity (no key)", "responses": simple}},
            "/models/{name}": {
                "get": {
                    "summary": "one model's consumer card: classes, features, metrics, calibration, how to "
                    "read the answer (a declared consumer's key)",
                    "security": [{"bearer": []}],
                    "responses": keyed,
                    "parameters": [
                        *name,
                        {"name": "version", "in": "query", "required": False, "schema": {"type": "integer"}},
                    ],
                }
            },
            "/healthz": {"get": {"summary": "process is up", "responses": simple}},
            "/readyz": {
                "get": {
                    "summary": "every released model is loaded (names the missing ones and why)",
                    "responses": {**simple, "503": {"description": "not ready"}},
                }
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": simple}},
            "/v2": {"get": {"summary": "Open Inference Protocol server metadata", "responses": simple}},
            "/v2/health/live": {"get": {"summary": "Open Inference Protocol liveness", "responses": simple}},
            "/v2/health/ready": {
                "get": {"summary": "Open Inference Protocol readiness", "responses": simple}
            },
            "/v2/models/{name}": {
                "get": {
                    "summary": "Open Inference Protocol model metadata (a declared consumer's key)",
                    "security": [{"bearer": []}],
                    "parameters": name,
                    "responses": keyed,
                }
            },
            "/v2/models/{name}/ready": {
                "get": {"summary": "is this model served", "parameters": name, "responses": simple}
            },
            "/v2/models/{name}/infer": {
                "post": {
                    "summary": "Open Inference Protocol inference (JSON or the binary tensor extension)",
                    "security": [{"bearer": []}],
                    "parameters": [*name, request_id],
                    "responses": {**simple, **errors},
                }
            },
            "/v2/models/{name}/versions/{version}/infer": {
                "post": {
                    "summary": "Open Inference Protocol inference with one version",
                    "security": [{"bearer": []}],
                    "parameters": [*name, *version, request_id],
                    "responses": {**simple, **errors},
                }
            },
        },
    }


OPENAPI = _document()
OPENAPI_JSON = json.dumps(OPENAPI).encode()

_EXAMPLE = """curl -s http://HOST:PORT/predict \\
  -H 'Authorization: Bearer lg_...' -H 'Content-Type: application/json' \\
  -d '{"model": "demo", "instances": [{"city": "Lyon", "age": 39, "owner": true, "income": null}]}'"""


def _render() -> str:
    rows = []
    for path, ops in OPENAPI["paths"].items():
        for method, op in ops.items():
            key = "key" if op.get("security") else ""
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{key}</td><td>{html.escape(op.get('summary', ''))}</td></tr>"
            )
    schemas = "".join(
        f"<h3 id='{html.escape(n)}'>{html.escape(n)}</h3><pre>{html.escape(json.dumps(sc, indent=2))}</pre>"
        for n, sc in OPENAPI["components"]["schemas"].items()
    )
    info = OPENAPI["info"]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(info['title'])}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "td,th{padding:.2rem .6rem;text-align:left;vertical-align:top}pre{background:#f4f4f4;padding:.6rem;"
        "overflow:auto}</style></head><body>"
        f"<h1>{html.escape(info['title'])} <small>{html.escape(info['version'])}</small></h1>"
        f"<p>{html.escape(info['description'])} The machine-readable document is "
        "<a href='/openapi.json'>/openapi.json</a>; answers follow the schema "
        f"<code>{html.escape(ANSWER_SCHEMA)}</code> (<a href='#PredictAnswer'>PredictAnswer</a>).</p>"
        f"<h2>Try it</h2><pre>{html.escape(_EXAMPLE)}</pre>"
        "<h2>Routes</h2><table><tr><th>method</th><th>path</th><th>auth</th><th>what</th></tr>"
        + "".join(rows)
        + "</table><p>'key': send <code>Authorization: Bearer &lt;key&gt;</code> of a consumer declared "
        "for the model.</p><h2>Schemas</h2>" + schemas + "</body></html>"
    )


_PAGE = _render()


def api_page() -> str:
    """The browser page at ``/``: lockgate's routes and schemas as plain HTML (no script)."""
    return _PAGE
