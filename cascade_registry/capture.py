"""Production feedback entities: captured predictions, the labels callers send back, drift checks.

Frozen pydantic models that know nothing of storage (:mod:`cascade_registry.sql_capture` stores them).
A captured prediction is one answered row: ``request_id`` is the answer's id and ``row`` its index in
the request (a batch of 20 rows is 20 captured predictions with one request id); ``role`` says which
version answered it (``live``: the released version; ``shadow``/``canary``: a candidate). A label is
joined to the predictions of the same ``request_id`` and ``row`` made for the same consumer.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "MAX_INPUT_CHARS",
    "REQUEST_ID_PATTERN",
    "CaptureRole",
    "CapturedPrediction",
    "DriftCheck",
    "FeedbackLabel",
    "LabelledPrediction",
    "PrunedFeedback",
]

#: a request id: a caller's ``X-Request-Id`` or the gateway's 32 random hex digits; bounded and safe in
#: logs and URLs
REQUEST_ID_PATTERN = r"[A-Za-z0-9._-]{1,64}"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
#: the JSON text of one captured input row (a row of a few thousand features fits; more is hostile)
MAX_INPUT_CHARS = 65_536
CaptureRole = Literal["live", "shadow", "canary"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _AnsweredRow(_Frozen):
    """Names one answered row: the answer's request id and the row's index in its request."""

    request_id: str = Field(description="the answer's request_id (X-Request-Id)")
    row: int = Field(0, ge=0, le=1_000_000, description="the row's index in its request")

    @field_validator("request_id")
    @classmethod
    def _safe_request_id(cls, value: str) -> str:
        if not _REQUEST_ID.fullmatch(value):
            raise ValueError(f"request_id {value[:80]!r} is not 1-64 characters of [A-Za-z0-9._-]")
        return value


class CapturedPrediction(_AnsweredRow):
    """One answered row as the gateway saw it."""

    model: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    consumer: str = Field(min_length=1, max_length=128, description="the declared consumer that asked")
    role: CaptureRole = "live"
    at: datetime = Field(description="when the answer was computed (UTC)")
    inputs: list[float | None] | dict[str, Any] = Field(
        description="the request row: numbers in feature order, or {column: value}"
    )
    label: str = Field(max_length=256, description="the predicted class")
    probabilities: list[float] = Field(min_length=1, max_length=4096)
    latency_ms: float = Field(ge=0, description="time inside the gateway for the whole request")


class FeedbackLabel(_AnsweredRow):
    """The true class of an answered row, sent back by the consumer that asked."""

    label: str = Field(min_length=1, max_length=256, description="the true class, as the card names it")
    consumer: str = Field(min_length=1, max_length=128)
    at: datetime
    source: Literal["api", "import"] = "api"


class LabelledPrediction(_Frozen):
    """A captured prediction joined to its label (same request id, row and consumer)."""

    prediction: CapturedPrediction
    truth: str
    labelled_at: datetime


class DriftCheck(_Frozen):
    """One ``lockgate monitor --drift`` run on a model version: the figures and what was decided."""

    model: str
    version: int
    at: datetime
    auc: float = Field(ge=0, le=1, description="adversarial validation ROC AUC, captured vs reference")
    threshold: float = Field(ge=0, le=1, description="the policy's monitor.drift_auc")
    rows: int = Field(ge=0, description="captured rows compared")
    stale: bool = Field(description="the check marked the version stale")
    reason: str
    figures: dict[str, Any] = Field(default_factory=dict, description="per feature AUC and importance")
    actor: str = "cli"


class PrunedFeedback(_Frozen):
    """What ``lockgate feedback prune`` removed (or, with ``dry_run``, would remove)."""

    before: datetime = Field(description="rows captured or labelled before this instant")
    model: str | None = Field(default=None, description="only this model's captured rows (None: every model)")
    captured: int = Field(ge=0, description="captured predictions")
    labels: int = Field(ge=0, description="labels left without a captured prediction to join")
    dry_run: bool = False
