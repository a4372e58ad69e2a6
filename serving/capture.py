"""Capture: a sampled, bounded record of answered rows, written off the hot path.

The request path pays for two things only: :meth:`Capture.wants` (a CRC of the request id against the
model's rate: the same request is sampled for every role, so a shadow answer is captured with its live
one) and, for a sampled request, :meth:`Capture.offer`, which appends a :class:`CaptureRecord` holding
references to arrays the request already made, and never blocks or raises. A background thread drains
the queue, turns records into :class:`~cascade_registry.capture.CapturedPrediction` rows and hands them
to a :class:`CaptureSink`: the registry database or rolling Parquet files (:mod:`serving.capture_parquet`).

Bounded everywhere, drop-and-count (``lockgate_capture_dropped_total{reason}``), never wait:

- ``queue_full``: more records waiting than ``capture_queue_rows`` rows (the writer is slow or stuck);
- ``rows_budget`` / ``bytes_budget``: more rows, or more bytes of JSON, than the budget of the current
  one-minute window;
- ``store_error``: the sink failed (database down, disk full); the batch is dropped, the writer goes on;
- ``error``: anything else that went wrong building a record.

A capture failure never fails a prediction.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import orjson

from cascade_registry.capture import CapturedPrediction

from .metrics import CAPTURE_DROPPED, CAPTURED_ROWS

__all__ = ["Capture", "CaptureRecord", "CaptureSink", "DROP_REASONS", "RegistrySink"]

log = logging.getLogger("lockgate.serving")
#: the fixed reason set of ``lockgate_capture_dropped_total``
DROP_REASONS = ("queue_full", "rows_budget", "bytes_budget", "store_error", "error")
_WINDOW_SECONDS = 60.0
_WRITE_BATCH = 2000  # rows per sink write


@dataclass(slots=True)
class CaptureRecord:
    """One sampled request as the data plane answered it (references, nothing copied on the hot path).

    ``numeric`` is the ``[n, f]`` matrix the model ran on (columns ``names``), ``categorical`` its
    ``[n, k]`` levels (columns ``categorical_names``) or None; ``labels`` the predicted class indexes
    into ``classes``; ``role`` live, shadow or canary."""

    request_id: str
    model: str
    version: int
    consumer: str
    role: str
    at: float
    numeric: np.ndarray
    categorical: np.ndarray | None
    names: list[str]
    categorical_names: list[str]
    classes: list[str]
    labels: np.ndarray
    probabilities: np.ndarray
    latency_ms: float

    @property
    def rows(self) -> int:
        return int(self.probabilities.shape[0])


class CaptureSink(Protocol):
    """Where captured rows go; ``write`` raises on failure (the batch is then counted as dropped)."""

    def write(self, rows: list[CapturedPrediction]) -> int: ...
    def close(self) -> None: ...


class RegistrySink:
    """The registry database (SQLite or PostgreSQL), opened on first write and again after a failure."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._registry: Any = None

    def write(self, rows: list[CapturedPrediction]) -> int:
        if self._registry is None:
            from cascade_registry import Registry  # SQLAlchemy: loaded by the writer thread, not the worker

            self._registry = Registry.open(self.url, create=False)
        try:
            return self._registry.record_captures(rows)
        except Exception:
            self.close()  # reconnect next time
            raise

    def close(self) -> None:
        if self._registry is not None:
            registry, self._registry = self._registry, None
            registry.close()


def _numbers(numeric: np.ndarray) -> list[list[float | None]]:
    """The matrix as rows of numbers, a missing (NaN) value as None; one ``tolist`` when none is missing."""
    if np.isfinite(numeric).all():
        return numeric.tolist()
    return [[v if math.isfinite(v) else None for v in row] for row in numeric.tolist()]


def _inputs(record: CaptureRecord) -> list[list[float | None]] | list[dict[str, Any]]:
    numbers = _numbers(record.numeric)
    if record.categorical is None:
        return numbers
    names = [*record.names, *record.categorical_names]
    levels = record.categorical.tolist()
    return [dict(zip(names, row + cats, strict=True)) for row, cats in zip(numbers, levels, strict=True)]


def to_rows(record: CaptureRecord) -> list[CapturedPrediction]:
    """The captured predictions of one record, one per answered row."""
    at = datetime.fromtimestamp(record.at, UTC)
    probabilities = np.round(record.probabilities.astype(np.float64), 6).tolist()
    labels = record.labels.tolist()
    inputs = _inputs(record)
    return [
        CapturedPrediction.model_construct(
            request_id=record.request_id,
            row=i,
            model=record.model,
            version=record.version,
            consumer=record.consumer,
            role=record.role,
            at=at,
            inputs=inputs[i],
            label=record.classes[labels[i]],
            probabilities=probabilities[i],
            latency_ms=round(record.latency_ms, 3),
        )
        for i in range(record.rows)
    ]


def _size(row: CapturedPrediction) -> int:
    return len(orjson.dumps(row.inputs)) + 12 * len(row.probabilities) + 160


class Capture:
    """The sampler, the bounded queue and the writer thread. ``rates``: model -> share of requests."""

    def __init__(
        self,
        sink: CaptureSink | None,
        default_rate: float,
        rates: dict[str, float] | None = None,
        queue_rows: int = 10_000,
        rows_per_minute: int = 60_000,
        bytes_per_minute: int = 64 << 20,
        flush_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.default_rate = default_rate if sink is not None else 0.0
        self.rates = dict(rates or {}) if sink is not None else {}
        self.queue_rows = queue_rows
        self.rows_per_minute = rows_per_minute
        self.bytes_per_minute = bytes_per_minute
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._queue: deque[CaptureRecord] = deque()
        self._queued_rows = 0  # touched by the event loop (+) and the writer (-): a lock keeps it exact
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._window = (clock(), 0)  # the event loop's rows budget: window start, rows taken
        self._bytes_window = (clock(), 0)  # the writer's bytes budget: window start, bytes written
        self._thread: threading.Thread | None = None
        self._thresholds: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self.sink is not None and (self.default_rate > 0 or any(r > 0 for r in self.rates.values()))

    # ------------------------------------------------------------------------------ the hot path
    def wants(self, model: str, request_id: str) -> bool:
        """Is this request of ``model`` sampled? Deterministic in the request id (the same answer for each
        role of one request)."""
        threshold = self._thresholds.get(model)
        if threshold is None:
            rate = self.rates.get(model, self.default_rate)
            threshold = self._thresholds[model] = int(round(min(max(rate, 0.0), 1.0) * 2**32))
        return threshold > 0 and zlib.crc32(request_id.encode()) < threshold

    def offer(self, record: CaptureRecord) -> None:
        """Queue ``record`` for the writer, or drop and count it; never blocks, never raises."""
        try:
            rows = record.rows
            if not self._take_rows(rows):
                CAPTURE_DROPPED.add("rows_budget", rows)
                return
            with self._lock:
                queued = self._queued_rows + rows
                full = queued > self.queue_rows or self._stopping
                if not full:
                    self._queue.append(record)
                    self._queued_rows = queued
            if full:
                CAPTURE_DROPPED.add("queue_full", rows)
            elif 2 * queued > self.queue_rows:  # half full: write now rather than at the next tick
                self._wake.set()
        except Exception:  # never let capture fail a prediction
            CAPTURE_DROPPED.add("error", 1)

    def _take_rows(self, rows: int) -> bool:
        start, used = self._window
        now = self._clock()
        if now - start >= _WINDOW_SECONDS:
            start, used = now, 0
        if used + rows > self.rows_per_minute:
            return False
        self._window = (start, used + rows)
        return True

    # ------------------------------------------------------------------------------ the writer
    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lockgate-capture-writer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (within ``timeout``), then stop the writer and close the sink."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.sink is not None:
            try:
                self.sink.close()
            except Exception as e:  # closing a broken connection: nothing left to lose
                log.debug("capture sink close failed: %s", e)

    def flush(self) -> None:
        """Write everything queued now, on the calling thread (tests, shutdown)."""
        while self._drain_once():
            pass

    def _run(self) -> None:
        """Write what queued up every ``flush_seconds`` (one transaction per batch, not per request), or
        as soon as the queue is half full or the capture stops."""
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            while self._drain_once():
                pass
            if self._stopping:
                return

    def _pop(self) -> list[CaptureRecord]:
        batch: list[CaptureRecord] = []
        rows = 0
        with self._lock:
            while self._queue and rows < _WRITE_BATCH:
                record = self._queue.popleft()
                batch.append(record)
                rows += record.rows
            self._queued_rows -= rows
        return batch

    def _drain_once(self) -> bool:
        batch = self._pop()
        if not batch:
            return False
        rows: list[CapturedPrediction] = []
        for record in batch:
            try:
                rows.extend(to_rows(record))
            except Exception:
                CAPTURE_DROPPED.add("error", record.rows)
        rows = self._within_bytes(rows)
        if rows:
            self._write(rows)
        return True

    def _within_bytes(self, rows: list[CapturedPrediction]) -> list[CapturedPrediction]:
        """The rows that fit the bytes budget of the current window (the writer's own bookkeeping)."""
        start, used = self._bytes_window
        now = self._clock()
        if now - start >= _WINDOW_SECONDS:
            start, used = now, 0
        kept: list[CapturedPrediction] = []
        for row in rows:
            size = _size(row)
            if used + size > self.bytes_per_minute:
                CAPTURE_DROPPED.add("bytes_budget", 1)
                continue
            used += size
            kept.append(row)
        self._bytes_window = (start, used)
        return kept

    def _write(self, rows: list[CapturedPrediction]) -> None:
        assert self.sink is not None
        try:
            self.sink.write(rows)
        except Exception as e:
            CAPTURE_DROPPED.add("store_error", len(rows))
            log.warning(
                "capture: %d rows dropped, the store failed (%s: %s)",
                len(rows),
                type(e).__name__,
                str(e).splitlines()[0][:200] if str(e) else "",
            )
            return
        for (model, role), n in _counts(rows).items():
            CAPTURED_ROWS.add(model, role, n)


def _counts(rows: list[CapturedPrediction]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.model, row.role)
        counts[key] = counts.get(key, 0) + 1
    return counts
