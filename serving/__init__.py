"""serving: the BentoML gateway for released, gate-bound models; declared consumers only.

Flat modules behind this façade (BentoML itself is imported only by :mod:`serving.service`):

- :mod:`serving.predictor`  ``OnnxPredictor.from_bundle(path)``: a gate-checked bundle behind ONNX Runtime
- :mod:`serving.codecs`     strict JSON / Open Inference Protocol decoding and answer encoding
- :mod:`serving.validation` rows -> float32 matrix per the card's input policy, or a clear error
- :mod:`serving.catalog`    what is served (immutable snapshots, atomic swaps); one bad bundle refused alone
- :mod:`serving.access`     who may call it (the registry's decisions, expiring caches, fail-closed)
- :mod:`serving.connections` header timeout and per-client connection cap below the ASGI app
- :mod:`serving.dataplane`  one data plane behind /predict and /v2
- :mod:`serving.app`        the Starlette transport; :mod:`serving.service` the BentoML service
- :mod:`serving.errors`     the exception tree and the only HTTP status mapping
- :mod:`serving.metrics`    module-level Prometheus metrics
- :mod:`serving.settings`   ``ServeSettings`` (``LOCKGATE_SERVE_*``); :mod:`serving.cli` ``lockgate serve``
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AuthError,
    BundleRejectedError,
    ForbiddenError,
    InvalidInputError,
    ModelOutputError,
    NotFoundError,
    NotReadyError,
    PayloadTooLargeError,
    ServingError,
    UnsupportedMediaTypeError,
)
from .settings import ServeSettings

if TYPE_CHECKING:  # pragma: no cover
    from .predictor import OnnxPredictor as OnnxPredictor

# loaded on first use, so `lockgate serve --help` (serving.cli) does not import ONNX Runtime
_LAZY = {"OnnxPredictor": "predictor"}

__all__ = [
    "AuthError",
    "BundleRejectedError",
    "ForbiddenError",
    "InvalidInputError",
    "ModelOutputError",
    "NotFoundError",
    "NotReadyError",
    "OnnxPredictor",
    "PayloadTooLargeError",
    "ServeSettings",
    "ServingError",
    "UnsupportedMediaTypeError",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'serving' has no attribute {name!r}")
    return getattr(importlib.import_module(f"serving.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
