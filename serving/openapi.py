"""The gateway's OpenAPI document, built once at import from pydantic models (never per request)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["OPENAPI"]


class PredictBody(BaseModel):
    model: str = Field(description="model name (GET /models lists them)")
    version: int | None = Field(None, ge=1, description="omit for the released version")
    inputs: list[list[float] | dict[str, float]] = Field(
        description="rows: numbers in the card's feature order, or objects keyed by feature name"
    )


class Calibration(BaseModel):
    method: str
    ece: float


class ModelBlock(BaseModel):
    name: str
    version: int
    sha256: str = Field(description="sha256 of model.onnx")
    released_at: str | None
    calibration: Calibration
    classes: list[str]
    recommended_threshold: float | None
    upstream: list[dict[str, Any]]
    card_url: str


class Prediction(BaseModel):
    label: str
    probabilities: dict[str, float]
    warnings: list[str]


class PredictAnswer(BaseModel):
    model: ModelBlock
    consume: str
    canary: bool | None = Field(None, description="present (true) only in canary mode")
    predictions: list[Prediction]


class ErrorDetail(BaseModel):
    code: str
    message: str
    fix: str


class ErrorAnswer(BaseModel):
    error: ErrorDetail


def _document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (PredictBody, PredictAnswer, ErrorAnswer):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema

    def ref(name: str) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}

    errors = {
        str(code): {"description": text, **ref("ErrorAnswer")}
        for code, text in [
            (401, "no, unknown or revoked API key"),
            (403, "consumer not declared for the model"),
            (404, "unknown model or version"),
            (413, "body or batch too large"),
            (415, "not application/json"),
            (422, "invalid input"),
        ]
    }
    simple = {"200": {"description": "JSON"}}
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
                    "responses": {
                        "200": {
                            "description": "predictions with the model's identity",
                            **ref("PredictAnswer"),
                        },
                        **errors,
                    },
                }
            },
            "/models": {"get": {"summary": "served models and their identity", "responses": simple}},
            "/models/{name}": {
                "get": {
                    "summary": "one model's card",
                    "responses": simple,
                    "parameters": [
                        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                }
            },
            "/healthz": {"get": {"summary": "process is up", "responses": simple}},
            "/readyz": {
                "get": {
                    "summary": "every released model is loaded (names the missing ones)",
                    "responses": {**simple, "503": {"description": "not ready"}},
                }
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": simple}},
            "/v2/health/ready": {
                "get": {"summary": "Open Inference Protocol readiness", "responses": simple}
            },
            "/v2/models/{name}": {
                "get": {"summary": "Open Inference Protocol model metadata", "responses": simple}
            },
            "/v2/models/{name}/infer": {
                "post": {
                    "summary": "Open Inference Protocol inference",
                    "security": [{"bearer": []}],
                    "responses": simple,
                }
            },
        },
    }


OPENAPI = _document()
