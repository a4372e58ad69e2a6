"""The serving hot path: who may call which model, answered from an in-process cache.

The cache is dropped whenever this process writes, and whenever the database's generation counter (bumped
by every write transaction, in any process or replica) differs from the one it was built at; the counter
is re-read at most every ``poll_seconds``. Keys are cached by a digest, never in plain text, in
least-recently-used maps; keys the registry does not know are kept apart from known ones, so a flood of
random keys evicts only other random keys, never a real consumer's entry.

Thread safety: each check works on one :class:`_Snapshot`; dropping the cache swaps in a fresh snapshot,
so an answer computed from data read before a change can only land in the discarded one.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cascade_registry.entities import AccessDecision
from cascade_registry.keys import digest_for_cache, parse_key, verify_secret
from cascade_registry.store import RegistryStore
from cascade_registry.version_range import VersionRange

__all__ = ["AccessCache", "LruCache"]

_MAX_ENTRIES = 100_000
_MAX_UNKNOWN = 10_000
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A bounded map that evicts the least recently used entry (never the whole map).

    Safe to share between threads without a lock: each step is one atomic ``OrderedDict`` call, and a
    key another thread evicted in between is simply a miss."""

    __slots__ = ("_data", "_max")

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            try:  # noqa: SIM105 - not contextlib.suppress: this is the gateway's hot path
                self._data.move_to_end(key)
            except KeyError:
                pass
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        try:
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)
        except KeyError:
            pass

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)


_MISSING = AccessDecision(
    allowed=False,
    consumer=None,
    reason="missing_key",
    message="no API key was sent; send the key issued to your consumer as a Bearer token",
)


class _Snapshot:
    __slots__ = ("decisions", "keys", "released", "rules", "unknown")

    def __init__(self) -> None:
        self.decisions: LruCache[tuple[bytes, str, int | None], AccessDecision] = LruCache(_MAX_ENTRIES)
        self.keys: LruCache[bytes, tuple[str | None, str]] = LruCache(_MAX_ENTRIES)
        self.unknown: LruCache[bytes, bool] = LruCache(_MAX_UNKNOWN)
        self.rules: dict[str, dict[str, list[VersionRange]]] = {}
        self.released: dict[str, int] | None = None


class AccessCache:
    def __init__(
        self, store: RegistryStore, poll_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._poll = poll_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._generation = -1
        self._next_poll = 0.0
        self._snap = _Snapshot()

    def invalidate(self) -> None:
        """Forget everything (called after every write made through this process)."""
        self._snap = _Snapshot()
        self._next_poll = 0.0

    def _refresh(self, now: float) -> None:
        with self._lock:
            if now < self._next_poll:
                return
            generation = self._store.generation()
            if generation != self._generation:
                self._snap = _Snapshot()
                self._generation = generation
            self._next_poll = now + self._poll

    def check(self, api_key: str | None, model_name: str, version: int | None = None) -> AccessDecision:
        now = self._clock()
        if now >= self._next_poll:
            self._refresh(now)
        if not api_key:
            return _MISSING
        snap = self._snap
        digest = digest_for_cache(api_key)
        cache_key = (digest, model_name, version)
        found = snap.decisions.get(cache_key)
        if found is not None:
            return found
        decision = self._decide(snap, api_key, digest, model_name, version)
        if decision.reason != "unknown_key":
            snap.decisions.put(cache_key, decision)
        return decision

    def identify(self, api_key: str | None) -> AccessDecision:
        """Who holds ``api_key`` (allowed: a known, unrevoked key), before any model is named."""
        now = self._clock()
        if now >= self._next_poll:
            self._refresh(now)
        if not api_key:
            return _MISSING
        consumer, status = self._identify(self._snap, api_key, digest_for_cache(api_key))
        if status == "ok":
            return _decision(True, consumer, "ok", f"the key belongs to consumer {consumer!r}")
        return _refusal(status, consumer)

    def check_consumer(self, consumer: str, model_name: str, version: int | None = None) -> AccessDecision:
        """The same rules for a consumer known by name (a model calling its upstream in-process)."""
        now = self._clock()
        if now >= self._next_poll:
            self._refresh(now)
        return self._declared(self._snap, consumer, model_name, version)

    # ------------------------------------------------------------------------------ uncached paths
    def _identify(self, snap: _Snapshot, api_key: str, digest: bytes) -> tuple[str | None, str]:
        known = snap.keys.get(digest)
        if known is not None:
            return known
        if snap.unknown.get(digest):
            return (None, "unknown_key")
        parsed = parse_key(api_key.strip())
        result: tuple[str | None, str] = (None, "unknown_key")
        if parsed is not None:
            record = self._store.lookup_key(parsed[0])
            if record is not None and verify_secret(parsed[1], record.salt, record.key_hash):
                revoked = record.revoked or record.consumer_revoked
                result = (record.consumer, "revoked_key" if revoked else "ok")
        if result[1] == "unknown_key":
            snap.unknown.put(digest, True)
        else:
            snap.keys.put(digest, result)
        return result

    def _decide(
        self, snap: _Snapshot, api_key: str, digest: bytes, model: str, version: int | None
    ) -> AccessDecision:
        consumer, status = self._identify(snap, api_key, digest)
        if status != "ok":
            return _refusal(status, consumer)
        assert consumer is not None
        return self._declared(snap, consumer, model, version)

    def _declared(self, snap: _Snapshot, consumer: str, model: str, version: int | None) -> AccessDecision:
        rules = snap.rules.get(consumer)
        if rules is None:
            rules = {}
            for d in self._store.list_declarations(consumer=consumer):
                rules.setdefault(d.model, []).append(VersionRange.parse(d.versions))
            snap.rules[consumer] = rules
        ranges = rules.get(model)
        if not ranges:
            return _decision(
                False,
                consumer,
                "undeclared",
                f"consumer {consumer!r} has not declared model {model!r}; declare it with "
                f"'lockgate registry declare {consumer} {model}'",
            )
        if version is None:
            if snap.released is None:
                snap.released = self._store.released_map()
            version = snap.released.get(model)
        if version is None or any(r.contains(version) for r in ranges):
            return _decision(True, consumer, "ok", f"consumer {consumer!r} declared model {model!r}")
        allowed = " or ".join(str(r) for r in ranges)
        return _decision(
            False,
            consumer,
            "undeclared",
            f"consumer {consumer!r} declared {model!r} for versions {allowed} only, not version "
            f"{version}; widen the declaration with 'lockgate registry declare'",
        )


def _refusal(status: str, consumer: str | None) -> AccessDecision:
    if status == "revoked_key":
        return _decision(
            False,
            consumer,
            "revoked_key",
            f"the API key of consumer {consumer!r} was revoked; ask its owner for a new one",
        )
    return _decision(
        False,
        None,
        "unknown_key",
        "the API key is not one this registry issued; check it or ask for a new one",
    )


def _decision(allowed: bool, consumer: str | None, reason: str, message: str) -> AccessDecision:
    return AccessDecision(allowed=allowed, consumer=consumer, reason=reason, message=message)  # type: ignore[arg-type]
