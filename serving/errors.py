"""The serving exception tree, and the only place that knows HTTP status codes.

::

    ServingError                      base; carries ``code`` (stable, machine-readable), message, fix
    ├── BundleRejectedError           a bundle that may not be served (no passing gate bound to its sha256)
    ├── AuthError                     the caller could not be identified            -> 401
    ├── ForbiddenError                an identified consumer not declared for a model -> 403
    ├── NotFoundError                 unknown model, version or route               -> 404
    ├── HeaderTimeoutError            request headers slower than the header timeout -> 408
    ├── PayloadTooLargeError          body or batch above the configured limits     -> 413
    ├── UnsupportedMediaTypeError     anything but application/json                 -> 415
    ├── InvalidInputError             the payload does not match the model's inputs -> 422
    ├── TooManyConnectionsError       one client address holds too many connections  -> 429
    ├── NotReadyError                 no model loaded yet / model unavailable       -> 503
    │   └── RegistryUnavailableError  the registry cannot be asked and nothing is cached -> 503 + Retry-After
    └── ModelOutputError              the model produced non-finite output          -> 500

Domain code raises these with structured arguments; :func:`http_status` and :func:`error_body` turn
them into the HTTP answer at the edge.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "AuthError",
    "BundleRejectedError",
    "ForbiddenError",
    "HeaderTimeoutError",
    "InvalidInputError",
    "ModelOutputError",
    "NotFoundError",
    "NotReadyError",
    "PayloadTooLargeError",
    "RegistryUnavailableError",
    "ServingError",
    "TooManyConnectionsError",
    "UnsupportedMediaTypeError",
    "error_body",
    "error_headers",
    "http_status",
    "raw_http_answer",
    "v2_error_body",
]


class ServingError(Exception):
    """Base of serving errors: ``code`` is stable, ``message`` says what is wrong, ``fix`` how to fix it."""

    code = "serving_error"
    outcome = "error"  # the metrics outcome label

    def __init__(self, message: str, fix: str = "", code: str | None = None) -> None:
        self.message = message
        self.fix = fix
        if code is not None:
            self.code = code
        super().__init__(f"{message} ({fix})" if fix else message)


class BundleRejectedError(ServingError):
    code = "bundle_rejected"
    outcome = "not_ready"


class AuthError(ServingError):
    code = "unauthorized"
    outcome = "unauthorized"


class ForbiddenError(ServingError):
    code = "forbidden"
    outcome = "forbidden"


class NotFoundError(ServingError):
    code = "not_found"
    outcome = "not_found"


class HeaderTimeoutError(ServingError):
    code = "header_timeout"
    outcome = "error"


class TooManyConnectionsError(ServingError):
    code = "too_many_connections"
    outcome = "error"


class PayloadTooLargeError(ServingError):
    code = "payload_too_large"
    outcome = "too_large"


class UnsupportedMediaTypeError(ServingError):
    code = "unsupported_media_type"
    outcome = "bad_media_type"


class InvalidInputError(ServingError):
    code = "invalid_input"
    outcome = "invalid_input"


class NotReadyError(ServingError):
    code = "not_ready"
    outcome = "not_ready"


class RegistryUnavailableError(NotReadyError):
    """The access decision needs the registry, which does not answer; ``retry_after`` in seconds."""

    code = "registry_unavailable"

    def __init__(self, message: str, fix: str = "", retry_after: int = 2) -> None:
        super().__init__(message, fix)
        self.retry_after = retry_after


class ModelOutputError(ServingError):
    code = "model_output_invalid"
    outcome = "error"


_STATUS: dict[type[ServingError], int] = {
    AuthError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    HeaderTimeoutError: 408,
    PayloadTooLargeError: 413,
    TooManyConnectionsError: 429,
    UnsupportedMediaTypeError: 415,
    InvalidInputError: 422,
    NotReadyError: 503,
    ModelOutputError: 500,
    BundleRejectedError: 503,
}


def http_status(error: ServingError) -> int:
    """The HTTP status for a serving error (500 for anything unexpected)."""
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def error_headers(error: ServingError) -> list[tuple[bytes, bytes]]:
    """Extra response headers an error carries (``Retry-After`` on 503s, ``WWW-Authenticate`` on 401s)."""
    retry = getattr(error, "retry_after", None)
    if retry is not None:
        return [(b"retry-after", str(int(retry)).encode())]
    if isinstance(error, AuthError):
        return [(b"www-authenticate", b"Bearer")]
    return []


def error_body(error: ServingError, extra: dict[str, Any] | None = None) -> bytes:
    """``{"error": {"code", "message", "fix"}}`` as JSON bytes (never bare NaN)."""
    body: dict[str, Any] = {"error": {"code": error.code, "message": error.message, "fix": error.fix}}
    if extra:
        body.update(extra)
    return json.dumps(body, allow_nan=False, default=str).encode()


_REASONS = {408: "Request Timeout", 429: "Too Many Requests"}


def raw_http_answer(error: ServingError) -> bytes:
    """A whole HTTP/1.1 answer (status line, headers, JSON body, ``Connection: close``), for the guards
    below the ASGI app (``connections.py``)."""
    status = http_status(error)
    body = error_body(error)
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def v2_error_body(error: ServingError) -> bytes:
    """The Open Inference Protocol error shape: ``{"error": "<message>"}`` (plus our code and fix)."""
    message = f"{error.message} ({error.fix})" if error.fix else error.message
    return json.dumps({"error": message, "code": error.code}, default=str).encode()
