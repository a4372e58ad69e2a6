"""cascade_registry: the system of record for models, their consumers and the cascade between them.

The bundle schema lives in :mod:`cascade_registry.artifacts` (stdlib + pydantic). The entities and errors
are as light and are imported here; :class:`Registry` and :class:`RegistryStore` (SQLAlchemy) are
loaded on first use, so importing the schema does not pull SQLAlchemy in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cascade_registry.entities import (
    AccessDecision,
    ApiKeyInfo,
    AuditEntry,
    ConsumerInfo,
    DeclarationInfo,
    ImpactEntry,
    ImpactReport,
    ModelVersionInfo,
    PinInfo,
    ServingEntry,
    WaiverInfo,
)
from cascade_registry.errors import (
    BundleRejectedError,
    CascadeBlockedError,
    ConflictError,
    CycleError,
    GateError,
    InvalidInputError,
    LoginError,
    NotFoundError,
    OwnerError,
    RegistryError,
    RegistryUnavailableError,
)

if TYPE_CHECKING:  # pragma: no cover
    from cascade_registry.registry import Registry as Registry
    from cascade_registry.store import RegistryStore as RegistryStore

_LAZY = {"Registry": "registry", "RegistryStore": "store"}

__all__ = [
    "AccessDecision",
    "ApiKeyInfo",
    "AuditEntry",
    "BundleRejectedError",
    "CascadeBlockedError",
    "ConflictError",
    "ConsumerInfo",
    "CycleError",
    "DeclarationInfo",
    "GateError",
    "ImpactEntry",
    "ImpactReport",
    "InvalidInputError",
    "LoginError",
    "ModelVersionInfo",
    "NotFoundError",
    "OwnerError",
    "PinInfo",
    "Registry",
    "RegistryError",
    "RegistryStore",
    "RegistryUnavailableError",
    "ServingEntry",
    "WaiverInfo",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cascade_registry' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cascade_registry.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
