"""cascade_registry: the system of record for models, their consumers and the cascade between them.

The bundle schema lives in :mod:`cascade_registry.artifacts` (stdlib + pydantic). The errors (stdlib) are
imported here; the entities (pydantic), :class:`Registry` and :class:`RegistryStore` (SQLAlchemy) are
loaded on first use, so importing a stdlib-only module of the package (``location``, ``durations``, for a
``--help``) pulls in neither pydantic nor SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    from cascade_registry.entities import AccessDecision as AccessDecision
    from cascade_registry.entities import ApiKeyInfo as ApiKeyInfo
    from cascade_registry.entities import AuditEntry as AuditEntry
    from cascade_registry.entities import ConsumerInfo as ConsumerInfo
    from cascade_registry.entities import DeclarationInfo as DeclarationInfo
    from cascade_registry.entities import ImpactEntry as ImpactEntry
    from cascade_registry.entities import ImpactReport as ImpactReport
    from cascade_registry.entities import ModelVersionInfo as ModelVersionInfo
    from cascade_registry.entities import PinInfo as PinInfo
    from cascade_registry.entities import ServingEntry as ServingEntry
    from cascade_registry.entities import WaiverInfo as WaiverInfo
    from cascade_registry.registry import Registry as Registry
    from cascade_registry.store import RegistryStore as RegistryStore

#: loaded on first use: the entities (pydantic) so that a subcommand's ``--help`` does not import
#: pydantic, the registry and its store so that importing the schema does not import SQLAlchemy
_ENTITIES = ("AccessDecision", "ApiKeyInfo", "AuditEntry", "ConsumerInfo", "DeclarationInfo", "ImpactEntry",
             "ImpactReport", "ModelVersionInfo", "PinInfo", "ServingEntry", "WaiverInfo")
_LAZY = {"Registry": "registry", "RegistryStore": "store", **dict.fromkeys(_ENTITIES, "entities")}

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
