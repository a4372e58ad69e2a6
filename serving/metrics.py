"""Module-level Prometheus metrics of the gateway (prometheus_client), with bounded label sets.

Label values are never taken from the request: ``model``/``version`` are loaded models (or
``"unknown"``), ``consumer`` is a consumer the registry declared (or ``"-"``), shown as a short digest
of its name unless ``metrics_consumer_names`` is set (``/metrics`` needs no key, so it must not list
who calls what), ``outcome`` and ``reason`` come from fixed sets. ``_created`` series are switched off
(they doubled every counter and histogram without telling anyone anything). The predicted-probability
histogram takes one vectorised update per batch instead of one ``observe`` per row and class.

Several workers (``lockgate serve --workers N``): BentoML gives every worker prometheus_client's
multiprocess directory, so each counter and histogram value lives in that worker's own memory-mapped
file, and :func:`exposition_registry` sums the files of every worker (live or exited) on each scrape:
any worker answers ``/metrics`` with the whole server's counts, none counted twice.
"""

from __future__ import annotations

import hashlib
import math
import threading
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

__all__ = [
    "BATCH_ROWS",
    "BUNDLE_REFUSALS",
    "CAPTURED_ROWS",
    "CAPTURE_DROPPED",
    "FEEDBACK_LABELS",
    "ONLINE_QUALITY",
    "MODEL_INFO",
    "OUTCOMES",
    "PREDICTED_ROWS",
    "PROBABILITIES",
    "ROLES",
    "REFUSALS",
    "REQUESTS",
    "REQUEST_LATENCY",
    "ROLLOUT_METRICS",
    "ROLLOUT_ROLES",
    "RequestMetrics",
    "RolloutMetrics",
    "exposition_registry",
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

#: the fixed role set of the ``lockgate_rollout_*`` series: during a shadow or canary rollout, the live
#: (released) version, a shadow candidate (never answers) or a canary candidate (answers its share)
ROLLOUT_ROLES = ("live", "shadow", "canary")

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
#: upper bounds of the predicted-probability buckets (0.05 ... 0.95; +Inf holds the rest, up to 1)
PROBABILITY_BUCKETS = np.array([round(0.05 * i, 2) for i in range(1, 20)])  # le="0.15", not 0.150...02
_BUCKETS = PROBABILITY_BUCKETS.tolist()
_PROBABILITY = Histogram(
    "lockgate_predicted_probability",
    "Predicted (calibrated) probability per model and class",
    ["model", "class"],
    buckets=_BUCKETS,
)


class _ProbabilityHistogram:
    """``lockgate_predicted_probability{model, class}``, fed a whole batch at a time: one vectorised
    bucket count per batch and class, added to the histogram's own per-bucket values (``_buckets``,
    ``_sum``: prometheus_client's Histogram internals, pinned in constraints.txt), so the series live
    where every other one does: in this worker's multiprocess file when there are several."""

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._lock = threading.Lock()
        self._children: dict[tuple[str, str], Histogram] = {}

    def _child(self, model: str, name: str) -> Histogram:
        child = self._children.get((model, name))
        if child is None:
            child = self._children[(model, name)] = self._histogram.labels(model, name)
        return child

    def observe(self, model: str, classes: list[str], probabilities: np.ndarray) -> None:
        if probabilities.shape[0] <= 4:  # a few rows: plain Python beats numpy's per-call overhead
            columns = probabilities.T.tolist()
            with self._lock:
                for name, column in zip(classes, columns, strict=True):
                    child = self._child(model, name)
                    for value in column:
                        child._buckets[bisect_left(_BUCKETS, value)].inc(1)
                    child._sum.inc(sum(column))
            return
        # many rows: bucket index per value, counted per class column in one vectorised pass
        idx = np.searchsorted(PROBABILITY_BUCKETS, probabilities, side="left")
        sums = probabilities.sum(axis=0, dtype=np.float64).tolist()
        nb = len(_BUCKETS) + 1
        with self._lock:
            for c, name in enumerate(classes):
                child = self._child(model, name)
                for bucket, count in enumerate(np.bincount(idx[:, c], minlength=nb).tolist()):
                    if count:
                        child._buckets[bucket].inc(count)
                child._sum.inc(sums[c])


PROBABILITIES = _ProbabilityHistogram(_PROBABILITY)


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


class _PredictedRows:
    """``lockgate_predicted_rows_total{model, version, role}``: rows predicted by each loaded version, by
    role (``direct``: answered to a caller; ``upstream``: computed as a part of a composed model).

    A prometheus_client Counter (so ``--workers N`` sums it across workers like every other series) whose
    labelled children are cached: a request pays one dict lookup and one ``inc``."""

    def __init__(self) -> None:
        self._counter = Counter(
            "lockgate_predicted_rows",
            "Rows predicted, by model version and role (direct: answered to a caller; upstream: a part of "
            "a composed downstream model)",
            ["model", "version", "role"],
        )
        self._children: dict[tuple[str, int, str], object] = {}

    def add(self, model: str, version: int, role: str, rows: int) -> None:
        key = (model, version, role)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._counter.labels(model, str(version), role)
        child.inc(rows)  # type: ignore[attr-defined]


PREDICTED_ROWS = _PredictedRows()


class RolloutMetrics:
    """The ``lockgate_rollout_*`` series, only for a model with a rollout in progress (labels: loaded
    models and versions, ``role`` from :data:`ROLLOUT_ROLES`, fixed ``agreement`` and ``reason`` sets):

    - ``lockgate_rollout_rows_total{model, version, role}``, ``lockgate_rollout_latency_seconds{...}``:
      rows predicted and the time of the model call (not the HTTP request) of each role;
    - ``lockgate_rollout_compared_rows_total{model, version, agreement}`` (``same`` | ``differ``: the shadow
      candidate's predicted class against the live one's), ``lockgate_rollout_abs_dp_total{model, version}``
      (the sum over compared rows of the per-row max over classes of |p_candidate - p_live|: divided by the
      compared rows, the mean) and ``lockgate_rollout_max_abs_dp`` (its largest value; the max over workers);
    - ``lockgate_rollout_shadow_dropped_total{model, reason}`` (``busy``, ``invalid``, ``error``).

    Labelled children are cached (a dict lookup per call, as :class:`RequestMetrics` does)."""

    def __init__(self) -> None:
        self._rows = Counter(
            "lockgate_rollout_rows", "Rows predicted during a rollout, by role", ["model", "version", "role"]
        )
        self._latency = Histogram(
            "lockgate_rollout_latency_seconds",
            "Model-call latency during a rollout, by role (shadow: off the response path)",
            ["model", "version", "role"],
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self._compared = Counter(
            "lockgate_rollout_compared_rows",
            "Shadow rows compared with the live answer, by whether the predicted class agreed",
            ["model", "version", "agreement"],
        )
        self._dp = Counter(
            "lockgate_rollout_abs_dp",
            "Sum over compared rows of the per-row max |p_shadow - p_live| over the classes",
            ["model", "version"],
        )
        self._max_dp = Gauge(
            "lockgate_rollout_max_abs_dp",
            "Largest per-row max |p_shadow - p_live| seen",
            ["model", "version"],
            multiprocess_mode="max",
        )
        self._dropped = Counter(
            "lockgate_rollout_shadow_dropped",
            "Shadow comparisons dropped (the request was answered all the same), by reason",
            ["model", "reason"],
        )
        self._children: dict[tuple, Any] = {}
        self._max: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def served(self, model: str, version: int, role: str, rows: int, seconds: float) -> None:
        v = str(version)
        self._child(self._rows, model, v, role).inc(rows)
        self._child(self._latency, model, v, role).observe(seconds)

    def compared(self, model: str, version: int, same: int, rows: int, dp: np.ndarray | None) -> None:
        v = str(version)
        if same:
            self._child(self._compared, model, v, "same").inc(same)
        if rows - same:
            self._child(self._compared, model, v, "differ").inc(rows - same)
        if dp is None or dp.size == 0:
            return
        self._child(self._dp, model, v).inc(float(dp.sum()))
        with self._lock:
            top = max(self._max.get((model, version), 0.0), float(dp.max()))
            self._max[(model, version)] = top
        self._child(self._max_dp, model, v).set(top)

    def shadow_dropped(self, model: str, reason: str) -> None:
        self._child(self._dropped, model, reason).inc()


ROLLOUT_METRICS = RolloutMetrics()


def exposition_registry(multiprocess_dir: Path | None) -> CollectorRegistry:
    """What ``/metrics`` shows: this process's registry, or with a multiprocess directory the sum of
    every worker's files there, plus the served models (each worker serves the same registry set)."""
    if multiprocess_dir is None:
        return REGISTRY
    registry = CollectorRegistry(auto_describe=True)
    MultiProcessCollector(registry, path=str(multiprocess_dir))
    registry.register(MODEL_INFO)
    return registry


def consumer_digest(consumer: str) -> str:
    """The ``consumer`` label when names are hidden: ``c-`` and 10 hex digits of the name's sha256
    (``lockgate registry`` users can compute it; a scraper without a key cannot read the names)."""
    return "c-" + hashlib.sha256(consumer.encode()).hexdigest()[:10]


def consumer_label(consumer: str | None, names: bool) -> str:
    """The ``consumer`` label of a declared consumer: its name with ``metrics_consumer_names``, else a
    digest (``-`` for none)."""
    if not consumer or consumer in ("-", "canary"):
        return consumer or "-"
    return consumer if names else consumer_digest(consumer)


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
            label = consumer_label(consumer, self.consumer_names)
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


class _LabelledCounter:
    """A prometheus_client Counter whose labelled children are cached (one dict lookup per ``add``)."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict[tuple[str, ...], object] = {}

    def add(self, *labels_and_amount: str | int | float) -> None:
        *labels, amount = labels_and_amount
        key = tuple(str(v) for v in labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._counter.labels(*key)
        child.inc(amount)  # type: ignore[attr-defined]


#: captured rows lost, by a reason of :data:`serving.capture.DROP_REASONS` (never a request's value)
CAPTURE_DROPPED = _LabelledCounter(
    Counter(
        "lockgate_capture_dropped",
        "Rows the capture dropped instead of blocking (queue_full, rows_budget, bytes_budget, store_error, "
        "error)",
        ["reason"],
    )
)
#: rows the capture wrote, by served model and role (live, shadow, canary)
CAPTURED_ROWS = _LabelledCounter(
    Counter("lockgate_captured_rows", "Rows written by the capture, by model and role", ["model", "role"])
)
#: labels consumers sent back (POST /feedback), by declared consumer (a digest unless names are shown)
FEEDBACK_LABELS = _LabelledCounter(
    Counter("lockgate_feedback_labels", "Labels stored from POST /feedback, by consumer", ["consumer"])
)


class _OnlineQuality:
    """Counts and sums of labelled live rows, per model, version and consumer (and per confidence bin), from
    which PromQL gets online accuracy, Brier and ECE over any window (``increase(...[1h])``); the metrics
    themselves are computed in one place, :mod:`training.metrics`, by ``lockgate monitor``. A row counts
    when its label arrives after its capture was stored (docs/monitoring.md)."""

    BINS = 10  # equal-width top-label confidence bins, as training.metrics bins them

    def __init__(self) -> None:
        mvc, mvb = ["model", "version", "consumer"], ["model", "version", "bin"]
        self.rows = _LabelledCounter(Counter("lockgate_online_labelled_rows", "Labelled live rows", mvc))
        self.correct = _LabelledCounter(
            Counter("lockgate_online_correct_rows", "Labelled live rows whose predicted class was right", mvc)
        )
        self.brier = _LabelledCounter(
            Counter("lockgate_online_brier_sum", "Sum of the labelled live rows' Brier terms", mvc)
        )
        self.bin_rows = _LabelledCounter(
            Counter("lockgate_online_bin_rows", "Labelled live rows by top-label confidence bin", mvb)
        )
        self.bin_correct = _LabelledCounter(
            Counter("lockgate_online_bin_correct_rows", "Right predictions by confidence bin", mvb)
        )
        self.bin_confidence = _LabelledCounter(
            Counter("lockgate_online_bin_confidence_sum", "Sum of top-label confidence by bin", mvb)
        )

    def observe(
        self, model: str, version: int, consumer: str, truth: int, probabilities: list[float]
    ) -> None:
        """One labelled row: ``truth`` is the class index, ``consumer`` the consumer's metrics label."""
        top = max(range(len(probabilities)), key=probabilities.__getitem__)
        confidence = probabilities[top]
        right = int(top == truth)
        squares = sum((p - (k == truth)) ** 2 for k, p in enumerate(probabilities))
        brier = squares / 2 if len(probabilities) == 2 else squares
        b = f"{min(self.BINS - 1, max(0, math.ceil(confidence * self.BINS) - 1)) / self.BINS:.1f}"
        self.rows.add(model, version, consumer, 1)
        self.correct.add(model, version, consumer, right)
        self.brier.add(model, version, consumer, brier)
        self.bin_rows.add(model, version, b, 1)
        self.bin_correct.add(model, version, b, right)
        self.bin_confidence.add(model, version, b, confidence)


ONLINE_QUALITY = _OnlineQuality()
