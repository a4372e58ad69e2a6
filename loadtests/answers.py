"""Judging one answer of the gateway: was it what the request expected? (No Locust import.)

:func:`judge_answer` returns ``None`` for a good answer, otherwise a short reason that becomes the
Locust failure message (and so groups failures in the report).
"""

from __future__ import annotations

import json
import math
from typing import Any

from loadtests.plan import EXPECTED_STATUS, ModelTarget

__all__ = ["PROBABILITY_TOLERANCE", "judge_answer"]

PROBABILITY_TOLERANCE = 1e-3


def _judge_prediction(i: int, pred: Any, classes: list[str]) -> str | None:
    if not isinstance(pred, dict):
        return f"predictions[{i}] is not an object"
    probs = pred.get("probabilities")
    if not isinstance(probs, dict) or not probs:
        return f"predictions[{i}].probabilities is missing or empty"
    if classes and set(probs) != set(classes):
        return f"predictions[{i}].probabilities has classes {sorted(probs)}, expected {sorted(classes)}"
    values = list(probs.values())
    if not all(isinstance(p, int | float) and math.isfinite(p) and 0.0 <= p <= 1.0 for p in values):
        return f"predictions[{i}].probabilities has values outside [0, 1]"
    if abs(sum(values) - 1.0) > PROBABILITY_TOLERANCE:
        return f"predictions[{i}].probabilities sum to {sum(values):.4f}, not 1"
    if pred.get("label") not in probs:
        return f"predictions[{i}].label {pred.get('label')!r} is not one of the classes"
    return None


def _judge_success(body: Any, target: ModelTarget, rows: int) -> str | None:
    if not isinstance(body, dict):
        return "2xx body is not a JSON object"
    meta = body.get("model")
    if not isinstance(meta, dict):
        return "2xx body has no 'model' metadata"
    for field in ("name", "version", "sha256"):
        if not meta.get(field):
            return f"model metadata lacks {field!r}"
    if meta["name"] != target.name:
        return f"answered by model {meta['name']!r}, asked {target.name!r}"
    if target.version is not None and meta["version"] != target.version:
        return f"answered by version {meta['version']!r}, asked {target.version}"
    preds = body.get("predictions")
    if not isinstance(preds, list) or len(preds) != rows:
        got = len(preds) if isinstance(preds, list) else "no"
        return f"{got} predictions for {rows} rows"
    for i, pred in enumerate(preds):
        problem = _judge_prediction(i, pred, target.classes)
        if problem:
            return problem
    return None


def _judge_error(body: Any) -> str | None:
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or not err.get("code") or not err.get("message"):
        return "error body is not {'error': {'code', 'message', 'fix'}}"
    return None


def judge_answer(kind: str, status: int, content: bytes | None, target: ModelTarget, rows: int) -> str | None:
    """``None`` when ``status`` and body are what a ``kind`` request expects, else the reason."""
    expected = EXPECTED_STATUS[kind]
    if status not in expected:
        want = "/".join(str(s) for s in sorted(expected))
        return f"{kind}: expected HTTP {want}, got {status or 'no answer'}"
    try:
        body = json.loads(content or b"")
    except (ValueError, UnicodeDecodeError):
        return f"{kind}: HTTP {status} body is not JSON"
    problem = _judge_success(body, target, rows) if 200 <= status < 300 else _judge_error(body)
    return f"{kind}: {problem}" if problem else None
