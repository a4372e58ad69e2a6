"""Shadow and canary rollouts in the gateway: the registry's rollout in progress of a model
(``Registry.start_rollout``, :class:`cascade_registry.entities.RolloutInfo`), followed on each reload.

Not to be confused with ``lockgate serve --canary BUNDLE`` (:class:`~serving.catalog.CanarySource`), the
older mode that serves one bundle from disk without a registry: a *rollout* is a candidate version beside
the released (live) one of a registry model.

- **shadow**: every direct request is answered by the live version; the candidate then runs on the same
  rows off the response path (:class:`ShadowRunner`: a task started after the answer is built, bounded by
  ``shadow_max_inflight``; over the bound, or on any error, the comparison is dropped and counted, never
  the request), and its answer is compared with the live one, never returned.
- **canary**: a deterministic share of the direct requests is answered by the candidate:
  :func:`routes_to_candidate` hashes the routing key (the request id, or the declared consumer with
  ``sticky=consumer``) into [0, 1) and compares it with the share, so the same key always gets the same
  version (a request without an id, sticky per request id, is a plain random draw). A consumer whose
  declaration does not cover the candidate's version keeps the live one.

Downstream models never see a rollout: a composed model is composed with the version it is pinned to.
The figures (:class:`~serving.metrics.RolloutMetrics`, label ``role`` = live | shadow | canary) are read
back by ``lockgate registry rollout NAME --gateway URL``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .metrics import ROLLOUT_METRICS

__all__ = [
    "Alignment",
    "RolloutPlan",
    "ShadowRunner",
    "canary_bucket",
    "compare_answers",
    "routes_to_candidate",
]

log = logging.getLogger("lockgate.serving")

#: decodes the request's rows for a slot's validator: (numeric matrix, categorical matrix or None)
Decode = Callable[[Any], tuple[np.ndarray, np.ndarray | None]]
#: the shadow's input: the live rows themselves (same columns), or how to decode the request for its card
ShadowRows = tuple[np.ndarray, np.ndarray | None] | Decode
#: hands a shadow's answer to the capture: (candidate slot, rows, categorical, (labels, probabilities),
#: perf_counter when its model call started)
Record = Callable[[Any, np.ndarray, np.ndarray | None, tuple, float], None]


@dataclass(frozen=True)
class Alignment:
    """How a candidate's answers line up with the live version's, worked out once per catalog: its label
    index -> the live label index (-1: a class the live version does not have), its probability columns in
    the live order (None when the class sets differ), and whether it reads the same request columns."""

    labels: np.ndarray
    columns: list[int] | None
    same_rows: bool

    @classmethod
    def between(cls, live: list[str], candidate: list[str], same_rows: bool) -> Alignment:
        """From the two versions' classes (and whether their request columns are the same)."""
        labels = np.array([live.index(c) if c in live else -1 for c in candidate], dtype=np.int64)
        columns = [candidate.index(c) for c in live] if sorted(live) == sorted(candidate) else None
        return cls(labels, columns, same_rows)


@dataclass(frozen=True)
class RolloutPlan:
    """The rollout of one model as the catalog serves it: the candidate's slot and how it is used."""

    mode: str  # "shadow" | "canary"
    share: float
    sticky: str  # "request_id" | "consumer"
    live_version: int
    candidate: Any  # serving.catalog.ModelSlot (typed loosely: catalog imports this module)
    alignment: Alignment


def canary_bucket(key: str) -> float:
    """``key`` hashed (sha256, first 8 bytes) to a number in [0, 1): uniform, and the same in every worker
    and every process (Python's ``hash`` is salted per process)."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def routes_to_candidate(key: str, share: float) -> bool:
    """Does the canary candidate answer the request with routing ``key``?"""
    return canary_bucket(key) < share


def compare_answers(
    live: tuple[np.ndarray, np.ndarray], candidate: tuple[np.ndarray, np.ndarray], alignment: Alignment
) -> tuple[int, np.ndarray | None]:
    """(rows whose predicted class is the same, per-row max |Δp| over the classes, or None when the two
    versions do not have the same classes). Classes are matched by name, not position (``alignment``)."""
    same = int(np.count_nonzero(alignment.labels[candidate[0]] == live[0]))
    if alignment.columns is None:
        return same, None
    order = alignment.columns
    theirs = candidate[1] if order == sorted(order) else candidate[1][:, order]  # sorted: the same order
    return same, np.abs(live[1].astype(np.float64) - theirs).max(axis=1)


class ShadowRunner:
    """Runs shadow candidates off the response path: at most ``max_inflight`` comparisons holding at most
    ``max_rows`` rows at a time (what they keep alive is bounded); more are dropped and counted."""

    def __init__(self, max_inflight: int, max_rows: int) -> None:
        self.max_inflight, self.max_rows = max_inflight, max_rows
        self._tasks: set[asyncio.Task] = set()
        self._rows = 0

    def offer(
        self, model: str, plan: RolloutPlan, rows: ShadowRows, live: tuple, record: Record | None = None
    ) -> None:
        """Compare the candidate's answer with ``live`` later (and hand it to ``record``, the capture);
        never blocks, never raises."""
        try:
            n = int(live[0].shape[0])
            if len(self._tasks) >= self.max_inflight or self._rows + n > self.max_rows:
                ROLLOUT_METRICS.shadow_dropped(model, "busy")
                return
            task = asyncio.get_running_loop().create_task(self._run(model, plan, rows, live, record))
            self._rows += n
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._done(t, n))
        except Exception:  # a shadow must never fail the request it mirrors
            ROLLOUT_METRICS.shadow_dropped(model, "error")

    def _done(self, task: asyncio.Task, rows: int) -> None:
        self._tasks.discard(task)
        self._rows -= rows

    async def _run(
        self, model: str, plan: RolloutPlan, rows: ShadowRows, live: tuple, record: Record | None
    ) -> None:
        await asyncio.sleep(0)  # let the live answer go out first
        slot = plan.candidate
        try:
            x, categorical = rows if isinstance(rows, tuple) else rows(slot.validator)
            started = time.perf_counter()
            answer = await slot.infer(x, categorical)
            seconds = time.perf_counter() - started
        except Exception as e:  # the candidate refused the rows (other columns) or failed: counted, no more
            reason = "invalid" if getattr(e, "outcome", "") == "invalid_input" else "error"
            ROLLOUT_METRICS.shadow_dropped(model, reason)
            if reason == "error":
                log.warning("shadow %s failed: %s: %s", slot.key, type(e).__name__, e)
            return
        p = slot.predictor
        same, dp = compare_answers(live, answer, plan.alignment)
        ROLLOUT_METRICS.served(model, p.version, "shadow", x.shape[0], seconds)
        ROLLOUT_METRICS.compared(model, p.version, same, x.shape[0], dp)
        if record is not None:
            try:
                record(slot, x, categorical, answer, started)
            except Exception:  # the capture never raises; a shadow never fails anything either
                ROLLOUT_METRICS.shadow_dropped(model, "error")

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (a bounded time) for the shadows in flight, e.g. before the gateway stops."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
