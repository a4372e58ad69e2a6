"""``POST /feedback``: true labels from the consumers that asked, joined later to captured predictions.

    {"request_id": "4be0...", "label": "malignant"}                 one label (row 0 of the request)
    {"request_id": "4be0...", "row": 3, "label": "benign"}          row 3 of a batch request
    {"labels": [{"request_id": ..., "label": ...}, ...]}            a batch (at most MAX_LABELS)

The caller is identified by its key (401 otherwise); a label counts only for predictions made for the
same consumer, so one consumer cannot label another's traffic. ``label`` must be a class of a served
model (422 otherwise, naming the classes). :func:`store_feedback` decodes, stores the labels in the
registry and adds the newly labelled live rows to the online-quality counters.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from cascade_registry.capture import REQUEST_ID_PATTERN, FeedbackLabel
from cascade_registry.errors import RegistryError

from .access import Decision
from .codecs import check_structure, decode_json
from .errors import InvalidInputError, NotFoundError, RegistryUnavailableError
from .metrics import FEEDBACK_LABELS, ONLINE_QUALITY, consumer_label

if TYPE_CHECKING:
    from .dataplane import DataPlane

__all__ = ["MAX_LABELS", "decode_feedback", "safe_request_id", "store_feedback"]

log = logging.getLogger("lockgate.serving")

#: the most labels one POST /feedback carries
MAX_LABELS = 10_000
_ID = re.compile(REQUEST_ID_PATTERN)
_KEYS = frozenset({"request_id", "row", "label"})


def safe_request_id(value: str) -> str:
    """``value`` if it is a bounded safe token, else a 422 (used for X-Request-Id and the body's ids)."""
    if _ID.fullmatch(value):
        return value
    raise InvalidInputError(
        f"request id {value[:40]!r} is not 1-64 characters of letters, digits, '.', '_' or '-'",
        "send a short token such as 32 hex digits, or omit it and the gateway makes one",
        code="bad_request_id",
    )


def _label(item: Any, i: int, consumer: str, classes: frozenset[str], at: datetime) -> FeedbackLabel:
    where = f"labels[{i}]"
    if type(item) is not dict or not item.keys() <= _KEYS or "request_id" not in item or "label" not in item:
        raise InvalidInputError(
            f"{where} must be an object with 'request_id' and 'label' (and optionally 'row')",
            'send {"request_id": "<the answer\'s request_id>", "label": "<the true class>"}',
            code="bad_body",
        )
    request_id, row, label = item["request_id"], item.get("row", 0), item["label"]
    if type(request_id) is not str:
        raise InvalidInputError(f"{where}.request_id must be a string", "copy it from the answer", "bad_body")
    safe_request_id(request_id)
    if type(row) is not int or not 0 <= row <= 1_000_000:
        raise InvalidInputError(
            f"{where}.row must be the row's index in its request (0, 1, ...), got {row!r}",
            "omit it for a one-row request",
            code="bad_body",
        )
    if type(label) is int:
        label = str(label)
    if type(label) is not str or label not in classes:
        shown = sorted(classes)[:20]
        raise InvalidInputError(
            f"{where}.label {str(label)[:40]!r} is not a class of a served model",
            f"send the true class as the model names it, one of {shown}",
            code="unknown_label",
        )
    return FeedbackLabel(request_id=request_id, row=row, label=label, consumer=consumer, at=at, source="api")


def decode_feedback(body: bytes, consumer: str, classes: frozenset[str]) -> list[FeedbackLabel]:
    """One label or ``{"labels": [...]}`` -> validated labels of ``consumer``; 422 on anything else."""
    obj = decode_json(body)
    if type(obj) is dict and "labels" in obj:
        items = obj["labels"]
        if type(items) is not list or not items or len(obj) != 1:
            raise InvalidInputError(
                "'labels' must be a non-empty list, and the only field",
                '{"labels": [{"request_id": ..., "label": ...}, ...]}',
                code="bad_body",
            )
    elif type(obj) is dict:
        items = [obj]
    else:
        raise InvalidInputError(
            "the body must be a JSON object", '{"request_id": ..., "label": ...}', code="bad_body"
        )
    if len(items) > MAX_LABELS:
        raise InvalidInputError(
            f"{len(items)} labels in one request; the limit is {MAX_LABELS}",
            "send them in several requests",
            code="too_many_labels",
        )
    at = datetime.now(UTC)
    return [_label(item, i, consumer, classes, at) for i, item in enumerate(items)]


async def store_feedback(plane: DataPlane, who: Decision, body: bytes) -> bytes:
    """POST /feedback for an identified caller: store its labels in the registry -> ``{"stored": n}``."""
    registry = getattr(plane.source, "registry", None)
    if registry is None:
        raise NotFoundError(
            "feedback needs the registry; a canary gateway keeps no labels",
            "send labels to a gateway serving from the registry, or use 'lockgate feedback import'",
            code="no_feedback_store",
        )
    check_structure(body, 4 * MAX_LABELS + 64, plane.settings.max_json_depth)
    classes = frozenset(c for slot in plane.catalog.models.values() for c in slot.predictor.classes)
    labels = decode_feedback(body, who.consumer or "-", classes)
    try:
        stored = await asyncio.to_thread(registry.record_labels, labels)
    except RegistryError as e:
        log.warning("feedback: %d labels not stored (%s)", len(labels), e)
        raise RegistryUnavailableError("the registry did not store the labels", "retry in a while") from None
    label = consumer_label(who.consumer, plane.settings.metrics_consumer_names)
    FEEDBACK_LABELS.add(label, stored)
    await _count_online(plane, registry, who.consumer or "-", label, labels)
    return orjson.dumps({"stored": stored})


async def _count_online(
    plane: DataPlane, registry: Any, consumer: str, label: str, labels: list[FeedbackLabel]
) -> None:
    """Add the newly labelled live rows to the online-quality counters (best effort: a failed read only
    leaves them uncounted; ``lockgate monitor`` reads the registry itself)."""
    try:
        joined = await asyncio.to_thread(registry.labelled_requests, consumer, [x.request_id for x in labels])
    except RegistryError as e:
        log.warning("feedback: online counters not updated (%s)", e)
        return
    wanted = {(x.request_id, x.row) for x in labels}
    for j in joined:
        p = j.prediction
        slot = plane.catalog.slots.get(f"{p.model}:{p.version}")
        if slot is None or (p.request_id, p.row) not in wanted or j.truth not in slot.predictor.classes:
            continue
        truth = slot.predictor.classes.index(j.truth)
        ONLINE_QUALITY.observe(p.model, p.version, label, truth, p.probabilities)
