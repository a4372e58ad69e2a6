"""Module-level Prometheus metrics of the gateway (prometheus_client), with bounded label sets.

Label values are never taken from the request: ``model``/``version`` are loaded models (or
``"unknown"``), ``consumer`` is a consumer the registry declared (or ``"-"``), shown as a short digest
of its name unless ``metrics_consumer_names`` is set (``/metrics`` needs no key, so it must not list
who calls what), ``outcome`` and ``reason`` come from fixed sets. ``_created`` series are switched off
(they doubled every counter and histogram without telling anyone anything). The predicted-probability
histogram is kept in numpy arrays (one vectorised update per batch instead of one ``observe`` per row
and class) and exported by a collector.
"""

from __future__ import annotations

import hashlib
import threading
from bisect import bisect_left
from collections.abc import Iterator

import numpy as np
from prometheus_client import REGISTRY, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "BATCH_ROWS",
    "BUNDLE_REFUSALS",
    "MODEL_INFO",
    "OUTCOMES",
    "PREDICTED_ROWS",
    "PROBABILITIES",
    "ROLES",
    "REFUSALS",
    "REQUESTS",
    "REQUEST_LATENCY",
    "RequestMetrics",
]

#: the fixed outcome set of ``lockgate_requests_total``
OUTCOMES = (
    "ok",
    "unauthorized",
    "forbidden",
    "not_found",
    "too_large",
    "bad_media_type",
    "invalid_input",
    "not_ready",
    "error",
)

#: the fixed role set of ``lockgate_predicted_rows_total``: rows answered to a caller, or computed as the
#: upstream part of a composed model
ROLES = ("direct", "upstream")

disable_created_metrics()

REQUESTS = Counter(
    "lockgate_requests",
    "Prediction requests by model, version, declared consumer and outcome",
    ["model", "version", "consumer", "outcome"],
)
REQUEST_LATENCY = Histogram(
    "lockgate_request_latency_seconds",
    "Prediction latency inside the gateway, by model and version",
    ["model", "version"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
BATCH_ROWS = Histogram(
    "lockgate_batch_rows",
    "Rows per ONNX Runtime call (after adaptive batching)",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
REFUSALS = Counter(
    "lockgate_refusals",
    "Requests refused by the access check, by model and reason",
    ["model", "reason"],
)
BUNDLE_REFUSALS = Counter(
    "lockgate_bundle_refusals",
    "Released bundles the gateway refused to load, by model and reason",
    ["model", "reason"],
)
PROBABILITY_BUCKETS = np.array([0.05 * i for i in range(1, 20)] + [1.0])
_BUCKETS = PROBABILITY_BUCKETS.tolist()


class _ProbabilityCollector(Collector):
    """``lockgate_predicted_probability{model, class}``: a histogram fed a whole batch at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[tuple[str, str], list] = {}

    def _state_of(self, model: str, name: str) -> list:
        state = self._state.get((model, name))
        if state is None:
            state = self._state[(model, name)] = [np.zeros(len(PROBABILITY_BUCKETS), dtype=np.int64), 0.0]
        return state

    def observe(self, model: str, classes: list[str], probabilities: np.ndarray) -> None:
        nb = len(PROBABILITY_BUCKETS)
        if probabilities.shape[0] <= 4:  # a few rows: plain Python beats numpy's per-call overhead
            rows = probabilities.tolist()
            with self._lock:
                for c, name in enumerate(classes):
                    state = self._state_of(model, name)
                    counts = state[0]
                    for row in rows:
                        counts[min(bisect_left(_BUCKETS, row[c]), nb - 1)] += 1
                        state[1] += row[c]
            return
        # many rows: bucket index per value, counted per class column in one vectorised pass
        idx = np.minimum(np.searchsorted(PROBABILITY_BUCKETS, probabilities, side="left"), nb - 1)
        sums = probabilities.sum(axis=0, dtype=np.float64)
        with self._lock:
            for c, name in enumerate(classes):
                state = self._state_of(model, name)
                state[0] += np.bincount(idx[:, c], minlength=nb)
                state[1] += float(sums[c])

    def forget(self, model: str) -> None:
        with self._lock:
            for key in [k for k in self._state if k[0] == model]:
                del self._state[key]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "lockgate_predicted_probability",
            "Predicted (calibrated) probability per model and class",
            labels=["model", "class"],
        )
        with self._lock:
            items = [(k, v[0].copy(), v[1]) for k, v in self._state.items()]
        for (model, cls), counts, total in items:
            cumulative = np.cumsum(counts)
            buckets = [
                (f"{b:.2f}" if b < 1 else "+Inf", float(n))
                for b, n in zip(PROBABILITY_BUCKETS, cumulative, strict=True)
            ]
            family.add_metric([model, cls], buckets, total)
        yield family


PROBABILITIES = _ProbabilityCollector()
REGISTRY.register(PROBABILITIES)


class _ModelInfoCollector(Collector):
    """``lockgate_model_info{model, version, sha256, calibration, role} 1`` for each version being served
    (role ``release``: answers direct callers; ``pin``: only a part of a composed model).

    The served set is replaced as a whole on each catalog swap (no per-series removal: in BentoML's
    multi-process mode prometheus_client warns on every ``remove``)."""

    def __init__(self) -> None:
        self._models: tuple[tuple[str, str, str, str, str], ...] = ()

    def set_models(self, models: list[tuple[str, str, str, str, str]]) -> None:
        self._models = tuple(models)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "lockgate_model_info",
            "Models being served (1) with their identity",
            labels=["model", "version", "sha256", "calibration", "role"],
        )
        for labels in self._models:
            family.add_metric(list(labels), 1.0)
        yield family


MODEL_INFO = _ModelInfoCollector()
REGISTRY.register(MODEL_INFO)


class _RowsCollector(Collector):
    """``lockgate_predicted_rows_total{model, version, role}``: rows predicted by each loaded version, by
    role (``direct``: answered to a caller; ``upstream``: computed as a part of a composed model).

    Kept in a plain dict (one add per request, ~0.1 us, against ~1-5 us for a labelled Counter child);
    only the event-loop thread adds, and a scrape copies the dict before reading it."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int, str], int] = {}

    def add(self, model: str, version: int, role: str, rows: int) -> None:
        key = (model, version, role)
        self._counts[key] = self._counts.get(key, 0) + rows

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "lockgate_predicted_rows",
            "Rows predicted, by model version and role (direct: answered to a caller; upstream: a part of "
            "a composed downstream model)",
            labels=["model", "version", "role"],
        )
        for (model, version, role), rows in sorted(self._counts.copy().items()):
            family.add_metric([model, str(version), role], float(rows))
        yield family


PREDICTED_ROWS = _RowsCollector()
REGISTRY.register(PREDICTED_ROWS)


def consumer_digest(consumer: str) -> str:
    """The ``consumer`` label when names are hidden: ``c-`` and 10 hex digits of the name's sha256
    (``lockgate registry`` users can compute it; a scraper without a key cannot read the names)."""
    return "c-" + hashlib.sha256(consumer.encode()).hexdigest()[:10]


class RequestMetrics:
    """Cached label children so the hot path does a dict lookup, not ``labels()``, per request."""

    def __init__(self, consumer_names: bool = False) -> None:
        self.consumer_names = consumer_names
        self._requests: dict[tuple[str, str, str, str], object] = {}
        self._latency: dict[tuple[str, str], object] = {}
        self._batch: dict[str, object] = {}

    def request(self, model: str, version: str, consumer: str, outcome: str, seconds: float | None) -> None:
        key = (model, version, consumer, outcome)
        child = self._requests.get(key)
        if child is None:
            label = (
                consumer if self.consumer_names or consumer in ("-", "canary") else consumer_digest(consumer)
            )
            child = self._requests[key] = REQUESTS.labels(model, version, label, outcome)
        child.inc()  # type: ignore[attr-defined]
        if seconds is not None:
            lkey = (model, version)
            hist = self._latency.get(lkey)
            if hist is None:
                hist = self._latency[lkey] = REQUEST_LATENCY.labels(*lkey)
            hist.observe(seconds)  # type: ignore[attr-defined]

    def batch(self, model: str, rows: int) -> None:
        hist = self._batch.get(model)
        if hist is None:
            hist = self._batch[model] = BATCH_ROWS.labels(model)
        hist.observe(rows)  # type: ignore[attr-defined]

    @staticmethod
    def refusal(model: str, reason: str) -> None:
        REFUSALS.labels(model, reason).inc()
