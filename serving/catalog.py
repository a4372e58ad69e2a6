"""What is being served, and who may call it.

- :class:`Catalog` is an immutable snapshot: name -> :class:`ModelSlot` (predictor, validator,
  batcher) plus the released models that could not be loaded and why. Reloads build a new snapshot
  (loading new versions first, reusing unchanged ones) and swap one reference, so a request in flight
  keeps the predictor it started with and none fails during a swap.
- :class:`CanarySource` serves one bundle from disk; :class:`RegistrySource` serves every released
  version in the registry and is polled by ``generation()``.
- :class:`OpenAccess` (canary: everyone) and :class:`RegistryAccess` (the registry's decisions: who
  holds a key, then may that consumer call that model), cached for ``access_cache_seconds`` at most and
  dropped when the registry's generation changes or after ``fail_closed_after_polls`` failed polls.

A bundle that cannot be served is refused alone, whatever goes wrong with it (a schema error, a card
nested 50,000 deep, a gate report that is a link to ``/dev/zero``, a corrupt model): it is logged with
its path, counted in ``lockgate_bundle_refusals_total`` and named in ``/readyz`` with a reason that
carries no file-system path.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from cascade_registry.access import LruCache
from cascade_registry.keys import digest_for_cache

from .batcher import MicroBatcher
from .errors import BundleRejectedError, RegistryUnavailableError
from .metrics import BUNDLE_REFUSALS
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
        self.url = str(getattr(registry, "url", ""))

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
            )
            for info in self.registry.released()
        ]


_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[/\\](?:[^\s'\"/\\:,;()]+[/\\]?)+")


def public_reason(text: str, bundle_path: str = "") -> str:
    """``text`` without file-system paths (the bundle's own path, then anything path-shaped)."""
    if bundle_path:
        text = text.replace(bundle_path, "<bundle>")
    return _PATH.sub("<path>", text)


def _load_slot(
    rel: Release, settings: ServeSettings, canary: bool, make_batcher: Callable[[OnnxPredictor], MicroBatcher]
) -> ModelSlot:
    key = f"{rel.name}:{rel.version}"
    if rel.bundle_path.startswith("!"):
        raise BundleRejectedError(rel.bundle_path[1:])
    predictor = OnnxPredictor.from_bundle(
        rel.bundle_path,
        released_at=rel.released_at,
        canary=canary,
        intra_op_threads=settings.intra_op_threads,
    )
    if (predictor.name, predictor.version) != (rel.name, rel.version):
        raise BundleRejectedError(
            f"the bundle holds {predictor.name}:{predictor.version}, not {key}", "register the bundle again"
        )
    if rel.onnx_sha256 is not None and predictor.sha256 != rel.onnx_sha256:
        raise BundleRejectedError(
            "model.onnx changed since it was registered", "register and release the bundle again"
        )
    return ModelSlot(
        predictor=predictor,
        validator=RowValidator(predictor.card, settings.max_batch_rows),
        batcher=make_batcher(predictor),
    )


def _refusal_reason(e: BaseException) -> tuple[str, str]:
    """(metric reason, readable reason) for anything that stopped a bundle from loading."""
    if isinstance(e, BundleRejectedError):
        return e.code.removeprefix("bundle_"), str(e)
    if isinstance(e, RecursionError):
        return "too_deep", "a JSON file of the bundle is nested too deeply to read"
    if isinstance(e, MemoryError):
        return "too_large", "a file of the bundle is too large to load"
    if isinstance(e, OSError):
        return "unreadable", f"a file of the bundle cannot be read ({e.strerror or type(e).__name__})"
    return "error", f"the bundle cannot be loaded ({type(e).__name__}: {e})"


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
            slot = _load_slot(rel, settings, canary, make_batcher)
        except Exception as e:  # any failure refuses this bundle alone, never the others
            metric_reason, reason = _refusal_reason(e)
            missing[key] = public_reason(reason, rel.bundle_path)
            BUNDLE_REFUSALS.labels(rel.name, metric_reason).inc()
            log.warning("not serving %s from %s: %s", key, rel.bundle_path.lstrip("!"), reason)
            if old is not None:
                models[rel.name] = old  # keep answering with the version that did pass
            continue
        models[rel.name] = slot
        log.info("loaded %s (sha256 %s…)", key, slot.predictor.sha256[:12])
    return Catalog(models=models, missing=missing, generation=generation)


# ---------------------------------------------------------------------------------------- access
@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    consumer: str | None
    reason: str
    message: str


_CANARY = Decision(True, "canary", "ok", "canary mode: no authentication")


class OpenAccess:
    """Canary mode: no authentication; every answer is marked ``canary``."""

    def identify_cached(self, api_key: str | None) -> Decision | None:
        return _CANARY

    def identify(self, api_key: str | None) -> Decision:
        return _CANARY

    def check(self, consumer: str, model: str, version: int) -> Decision | None:
        return _CANARY

    def lookup(self, consumer: str, model: str, version: int) -> Decision:
        return _CANARY

    def invalidate(self) -> None:
        pass

    def poll_failed(self) -> None:
        pass

    def poll_succeeded(self) -> None:
        pass


class RegistryAccess:
    """The registry's decisions with bounded, expiring caches.

    Two questions, in this order: who holds this key (``identify``: before the body is read or any model
    named), and may that consumer call this model and version (``check``/``lookup``). Answers are
    cached for at most ``ttl_seconds``, in least-recently-used maps keyed by the key's digest; refusals
    of unknown keys live in their own smaller map, so random keys can only evict each other.

    - The registry keeps its own cache, refreshed at most every ``settle_seconds``; a decision it gives
      within that window after a change may predate the change, so it is used but not cached here.
    - After ``fail_closed_after`` failed registry polls in a row every cached decision is dropped and
      none is cached until a poll succeeds: callers then get what the registry says, or 503.
    - A registry that cannot be asked raises :class:`RegistryUnavailableError` (503 + Retry-After).
    """

    def __init__(
        self,
        registry: Any,
        max_entries: int = 10_000,
        settle_seconds: float = 1.0,
        ttl_seconds: float = 5.0,
        fail_closed_after: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.max_entries = max_entries
        self.settle_seconds = settle_seconds
        self.ttl_seconds = ttl_seconds
        self.fail_closed_after = fail_closed_after
        self.failed_polls = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._epoch = 0
        self._invalidated_at = clock()
        self._new_caches()

    def _new_caches(self) -> None:
        self._keys: LruCache[bytes, tuple[Decision, float]] = LruCache(self.max_entries)
        self._unknown: LruCache[bytes, tuple[Decision, float]] = LruCache(max(16, self.max_entries // 10))
        self._decisions: LruCache[tuple[str, str, int], tuple[Decision, float]] = LruCache(self.max_entries)

    @property
    def closed(self) -> bool:
        return self.failed_polls >= self.fail_closed_after

    # ------------------------------------------------------------------------------------ who
    def identify_cached(self, api_key: str) -> Decision | None:
        digest = digest_for_cache(api_key)
        hit = self._keys.get(digest) or self._unknown.get(digest)
        if hit is None or hit[1] <= self._clock() or self.closed:
            return None
        return hit[0]

    def identify(self, api_key: str) -> Decision:
        epoch, started = self._epoch, self._clock()
        d = self._ask(self.registry.identify, api_key)
        cache = self._keys if d.reason != "unknown_key" else self._unknown
        self._store(cache, digest_for_cache(api_key), d, epoch, started)
        return d

    # ------------------------------------------------------------------------------------ may
    def check(self, consumer: str, model: str, version: int) -> Decision | None:
        """The cached decision, or None when the registry must be asked (:meth:`lookup`)."""
        hit = self._decisions.get((consumer, model, version))
        if hit is None or hit[1] <= self._clock() or self.closed:
            return None
        return hit[0]

    def lookup(self, consumer: str, model: str, version: int) -> Decision:
        epoch, started = self._epoch, self._clock()
        d = self._ask(self.registry.check_consumer, consumer, model, version)
        self._store(self._decisions, (consumer, model, version), d, epoch, started)
        return d

    # ------------------------------------------------------------------------------------ upkeep
    def _ask(self, fn: Callable[..., Any], *args: Any) -> Decision:
        try:
            d = fn(*args)
        except Exception as e:  # the database is down or unreachable: never a 500
            log.warning("registry unavailable for an access check (%s: %s)", type(e).__name__, e)
            raise RegistryUnavailableError(
                "the registry cannot be reached to check this request's access",
                "retry in a few seconds",
                retry_after=max(1, round(self.settle_seconds)),
            ) from None
        return Decision(bool(d.allowed), d.consumer, str(d.reason), str(d.message))

    def _store(self, cache: LruCache, key: Any, d: Decision, epoch: int, started: float) -> None:
        with self._lock:
            settled = started - self._invalidated_at >= self.settle_seconds
            if epoch == self._epoch and settled and not self.closed:
                cache.put(key, (d, started + self.ttl_seconds))

    def invalidate(self) -> None:
        with self._lock:
            self._epoch += 1
            self._invalidated_at = self._clock()
            self._new_caches()

    def poll_failed(self) -> None:
        self.failed_polls += 1
        if self.failed_polls == self.fail_closed_after:
            log.warning(
                "registry unreachable for %d polls in a row: cached access decisions dropped; callers "
                "get 503 until it answers",
                self.failed_polls,
            )
            self.invalidate()

    def poll_succeeded(self) -> None:
        if self.closed:
            log.info("registry reachable again")
        self.failed_polls = 0
