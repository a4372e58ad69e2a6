"""cascade_registry: the system of record for models, their consumers and the cascade between them.

The bundle schema lives in :mod:`cascade_registry.artifacts` (stdlib + pydantic). Everything else is
loaded lazily, so importing the schema does not pull SQLAlchemy in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from cascade_registry.entities import (
        AccessDecision as AccessDecision,
    )
    from cascade_registry.entities import (
        ApiKeyInfo as ApiKeyInfo,
    )
    from cascade_registry.entities import (
        AuditEntry as AuditEntry,
    )
    from cascade_registry.entities import (
        ConsumerInfo as ConsumerInfo,
    )
    from cascade_registry.entities import (
        DeclarationInfo as DeclarationInfo,
    )
    from cascade_registry.entities import (
        ImpactEntry as ImpactEntry,
    )
    from cascade_registry.entities import (
        ImpactReport as ImpactReport,
    )
    from cascade_registry.entities import (
        ModelVersionInfo as ModelVersionInfo,
    )
    from cascade_registry.entities import (
        WaiverInfo as WaiverInfo,
    )
    from cascade_registry.errors import (
        BundleRejectedError as BundleRejectedError,
    )
    from cascade_registry.errors import (
        CascadeBlockedError as CascadeBlockedError,
    )
    from cascade_registry.errors import (
        ConflictError as ConflictError,
    )
    from cascade_registry.errors import (
        CycleError as CycleError,
    )
    from cascade_registry.errors import (
        GateError as GateError,
    )
    from cascade_registry.errors import (
        InvalidInputError as InvalidInputError,
    )
    from cascade_registry.errors import (
        NotFoundError as NotFoundError,
    )
    from cascade_registry.errors import (
        RegistryError as RegistryError,
    )
    from cascade_registry.errors import (
        RegistryUnavailableError as RegistryUnavailableError,
    )
    from cascade_registry.registry import Registry as Registry
    from cascade_registry.store import RegistryStore as RegistryStore

_EXPORTS = {
    "Registry": "registry",
    "RegistryStore": "store",
    **{
        n: "entities"
        for n in (
            "AccessDecision",
            "ApiKeyInfo",
            "AuditEntry",
            "ConsumerInfo",
            "DeclarationInfo",
            "ImpactEntry",
            "ImpactReport",
            "ModelVersionInfo",
            "WaiverInfo",
        )
    },
    **{
        n: "errors"
        for n in (
            "BundleRejectedError",
            "CascadeBlockedError",
            "ConflictError",
            "CycleError",
            "GateError",
            "InvalidInputError",
            "NotFoundError",
            "RegistryError",
            "RegistryUnavailableError",
        )
    },
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cascade_registry' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cascade_registry.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
