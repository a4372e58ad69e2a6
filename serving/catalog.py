"""What is being served, and who may call it.

- :class:`Catalog` is an immutable snapshot: name -> :class:`ModelSlot` (predictor, validator,
  batcher) plus the released models that could not be loaded and why. Reloads build a new snapshot
  (loading new versions first, reusing unchanged ones) and swap one reference, so a request in flight
  keeps the predictor it started with and none fails during a swap.
- :class:`CanarySource` serves one bundle from disk; :class:`RegistrySource` serves every released
  version in the registry and is polled by ``generation()``.
- :class:`OpenAccess` (canary: everyone) and :class:`RegistryAccess` (the registry's decision, cached
  per key and model until the registry's generation changes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .batcher import MicroBatcher
from .errors import BundleRejectedError
from .integrity import verify_release
from .predictor import OnnxPredictor
from .settings import ServeSettings
from .validation import RowValidator

__all__ = [
    "CanarySource",
    "Catalog",
    "Decision",
    "ModelSlot",
    "OpenAccess",
    "RegistryAccess",
    "RegistrySource",
    "Release",
    "build_catalog",
]

log = logging.getLogger("lockgate.serving")


@dataclass(frozen=True)
class Release:
    """One version the source says should be served."""

    name: str
    version: int
    bundle_path: str
    onnx_sha256: str | None = None
    released_at: datetime | None = None
    #: the registry's record: every file's sha256 and the card, both as registered (None in canary mode)
    manifest: Any = None
    card: Any = None


@dataclass(frozen=True)
class ModelSlot:
    predictor: OnnxPredictor
    validator: RowValidator
    batcher: MicroBatcher


@dataclass(frozen=True)
class Catalog:
    models: dict[str, ModelSlot] = field(default_factory=dict)
    #: "name:version" -> why it is not served
    missing: dict[str, str] = field(default_factory=dict)
    generation: int | None = None


class Source(Protocol):
    canary: bool

    def generation(self) -> int: ...

    def releases(self) -> list[Release]: ...

    def versions(self, name: str) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class CanarySource:
    """One bundle straight from disk; never changes."""

    canary = True

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def generation(self) -> int:
        return 0

    def versions(self, name: str) -> list[dict[str, Any]]:
        return [{"version": r.version, "status": "canary", "released_at": None} for r in self.releases()]

    def close(self) -> None:
        pass

    def releases(self) -> list[Release]:
        from cascade_registry.artifacts import ModelBundle

        try:
            ref = ModelBundle.read_card(self.path).ref
        except Exception as e:  # InvalidBundleError: reported as missing by build_catalog
            return [Release(name=self.path.name, version=1, bundle_path=f"!{e}")]
        return [Release(ref.name, ref.version, str(self.path))]


class RegistrySource:
    """Every currently released version in the registry (``Registry.released()``)."""

    canary = False

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def generation(self) -> int:
        return int(self.registry.generation())

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every registered version of ``name`` with its status (released, superseded, ...)."""
        return [
            {
                "version": info.ref.version,
                "status": info.status,
                "released_at": info.released_at.isoformat() if info.released_at else None,
            }
            for info in self.registry.versions(name)
        ]

    def close(self) -> None:
        self.registry.close()

    def releases(self) -> list[Release]:
        return [
            Release(
                name=info.ref.name,
                version=info.ref.version,
                bundle_path=info.bundle_path,
                onnx_sha256=info.onnx_sha256,
                released_at=info.released_at,
                manifest=info.manifest,
                card=info.card,
            )
            for info in self.registry.released()
        ]


def build_catalog(
    releases: list[Release],
    previous: Catalog,
    settings: ServeSettings,
    canary: bool,
    make_batcher: Callable[[OnnxPredictor], MicroBatcher],
    generation: int | None = None,
) -> Catalog:
    """Load what changed, reuse what did not; a version that fails to load is reported, not served."""
    models: dict[str, ModelSlot] = {}
    missing: dict[str, str] = {}
    for rel in releases:
        key = f"{rel.name}:{rel.version}"
        old = previous.models.get(rel.name)
        if (
            old is not None
            and old.predictor.version == rel.version
            and (rel.onnx_sha256 is None or old.predictor.sha256 == rel.onnx_sha256)
            and str(old.predictor.bundle.path) == str(Path(rel.bundle_path))
        ):
            models[rel.name] = old
            continue
        try:
            if rel.bundle_path.startswith("!"):
                raise BundleRejectedError(rel.bundle_path[1:])
            stored = None if canary else verify_release(rel)
            predictor = OnnxPredictor.from_bundle(
                rel.bundle_path,
                released_at=rel.released_at,
                canary=canary,
                intra_op_threads=settings.intra_op_threads,
                card=stored.card if stored else None,
            )
            if (predictor.name, predictor.version) != (rel.name, rel.version):
                raise BundleRejectedError(
                    f"{rel.bundle_path} holds {predictor.name}:{predictor.version}, not {key}",
                    "register the bundle again",
                )
            if rel.onnx_sha256 is not None and predictor.sha256 != rel.onnx_sha256:
                raise BundleRejectedError(
                    f"{rel.bundle_path}: model.onnx changed since it was registered",
                    "register and release the bundle again",
                )
        except BundleRejectedError as e:
            missing[key] = str(e)
            log.warning("not serving %s: %s", key, e)
            if old is not None:
                models[rel.name] = old  # keep answering with the version that did pass
            continue
        models[rel.name] = ModelSlot(
            predictor=predictor,
            validator=RowValidator(predictor.card, settings.max_batch_rows),
            batcher=make_batcher(predictor),
        )
        log.info("serving %s (sha256 %s…)", key, predictor.sha256[:12])
    return Catalog(models=models, missing=missing, generation=generation)


# ---------------------------------------------------------------------------------------- access
@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    consumer: str | None
    reason: str
    message: str


class OpenAccess:
    """Canary mode: no authentication; every answer is marked ``canary``."""

    def check(self, api_key: str | None, model: str, version: int) -> Decision | None:
        return Decision(True, "canary", "ok", "canary mode: no authentication")

    def lookup(self, api_key: str | None, model: str, version: int) -> Decision:
        return Decision(True, "canary", "ok", "canary mode: no authentication")

    def invalidate(self) -> None:
        pass


class RegistryAccess:
    """``Registry.check_access`` with a bounded cache, emptied whenever the registry changes.

    The registry keeps its own cache, refreshed at most every ``settle_seconds``; a decision it gives
    within that window after a change may predate the change, so such decisions are used but not
    cached here (otherwise a stale refusal could stick until the next change).
    """

    def __init__(self, registry: Any, max_entries: int = 10_000, settle_seconds: float = 1.0) -> None:
        self.registry = registry
        self.max_entries = max_entries
        self.settle_seconds = settle_seconds
        self._cache: dict[tuple[str | None, str, int], Decision] = {}
        self._epoch = 0
        self._invalidated_at = time.monotonic()
        self._lock = threading.Lock()

    def check(self, api_key: str | None, model: str, version: int) -> Decision | None:
        """The cached decision, or None when the registry must be asked (:meth:`lookup`)."""
        return self._cache.get((api_key, model, version))

    def lookup(self, api_key: str | None, model: str, version: int) -> Decision:
        epoch, started = self._epoch, time.monotonic()
        d = self.registry.check_access(api_key, model, version)
        decision = Decision(bool(d.allowed), d.consumer, str(d.reason), str(d.message))
        with self._lock:
            settled = started - self._invalidated_at >= self.settle_seconds
            if epoch == self._epoch and settled:
                if len(self._cache) >= self.max_entries:
                    self._cache = {}
                self._cache[(api_key, model, version)] = decision
        return decision

    def invalidate(self) -> None:
        with self._lock:
            self._epoch += 1
            self._invalidated_at = time.monotonic()
            self._cache = {}
