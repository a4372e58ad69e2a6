"""Who may call what: :class:`OpenAccess` (canary: everyone) and :class:`RegistryAccess` (the registry's
decisions: who holds a key, then may that consumer call that model), cached for
``access_cache_seconds`` at most and dropped when the registry's generation changes or after
``fail_closed_after_polls`` failed polls in a row.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cascade_registry.access import LruCache
from cascade_registry.keys import digest_for_cache

from .errors import RegistryUnavailableError

__all__ = ["Decision", "OpenAccess", "RegistryAccess"]

log = logging.getLogger("lockgate.serving")


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
        self._closed = False
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
        return self._closed

    # ------------------------------------------------------------------------------------ who
    def identify_cached(self, api_key: str) -> Decision | None:
        if self._closed:
            return None
        digest = digest_for_cache(api_key)
        hit = self._keys.get(digest) or self._unknown.get(digest)
        if hit is None or hit[1] <= self._clock():
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
        if self._closed:
            return None
        hit = self._decisions.get((consumer, model, version))
        if hit is None or hit[1] <= self._clock():
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
            self._closed = True
            log.warning(
                "registry unreachable for %d polls in a row: cached access decisions dropped; callers "
                "get 503 until it answers",
                self.failed_polls,
            )
            self.invalidate()

    def poll_succeeded(self) -> None:
        if self._closed:
            log.info("registry reachable again")
        self.failed_polls = 0
        self._closed = False
