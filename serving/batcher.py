"""Adaptive batching of ONNX Runtime calls inside the event loop.

Each request appends its rows and awaits a future; the first request of an event-loop tick schedules
one flush with ``loop.call_soon``, which runs after every request that became ready in the same tick
has also queued. So no request waits on a timer (a lone request pays one loop iteration, ~10-20 us),
and under load the requests that arrive together share one ``session.run``. (A request never yields
before it reaches the model — its body is already read — so "is another request in flight?" is always
"no" at that point: queueing every request is what lets them meet.) Limits: at most ``max_rows`` rows per
ONNX Runtime call (bigger queues are split), no added wait time; ONNX Runtime runs in the event-loop
thread (a thread-pool hop costs more than the ~0.05 ms a small model takes; see benchmarks/serving.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from .predictor import OnnxPredictor

__all__ = ["MicroBatcher"]


class MicroBatcher:
    def __init__(
        self,
        predictor: OnnxPredictor,
        max_rows: int = 512,
        enabled: bool = True,
        on_batch: Callable[[np.ndarray, np.ndarray], None] | None = None,
    ) -> None:
        self.predictor = predictor
        self.max_rows = max_rows
        self.enabled = enabled
        self._on_batch = on_batch
        self._pending: list[tuple[np.ndarray, np.ndarray | None, asyncio.Future]] = []
        self._scheduled = False

    async def predict(
        self, x: np.ndarray, categorical: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities for ``x`` (and its categorical columns, for mixed tables), merged with
        the other requests of this loop tick."""
        labels, probabilities, *_ = await self.predict_all(x, categorical)
        return labels, probabilities

    async def predict_all(
        self, x: np.ndarray, categorical: np.ndarray | None = None
    ) -> tuple[np.ndarray, ...]:
        """:meth:`predict` plus a multi-output model's other heads (:meth:`OnnxPredictor.predict_all`)."""
        if not self.enabled or x.shape[0] >= self.max_rows:
            return self._run(x, categorical)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((x, categorical, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _run(self, x: np.ndarray, categorical: np.ndarray | None) -> tuple[np.ndarray, ...]:
        outputs = self.predictor.predict_all(x, categorical)
        if self._on_batch is not None:
            self._on_batch(x, outputs[1])
        return outputs

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        chunk: list[tuple[np.ndarray, np.ndarray | None, asyncio.Future]] = []
        rows = 0
        for item in pending:
            if chunk and rows + item[0].shape[0] > self.max_rows:
                self._run_chunk(chunk)
                chunk, rows = [], 0
            chunk.append(item)
            rows += item[0].shape[0]
        if chunk:
            self._run_chunk(chunk)

    def _run_chunk(self, chunk: list[tuple[np.ndarray, np.ndarray | None, asyncio.Future]]) -> None:
        try:
            if len(chunk) == 1:
                result = self._run(chunk[0][0], chunk[0][1])
                if not chunk[0][2].done():
                    chunk[0][2].set_result(result)
                return
            x = np.concatenate([x for x, _, _ in chunk])
            cat = None if chunk[0][1] is None else np.concatenate([c for _, c, _ in chunk])
            outputs = self._run(x, cat)
        except Exception as e:  # handed to every waiting request; the data plane maps it
            for _, _, future in chunk:
                if not future.done():
                    future.set_exception(e)
            return
        start = 0
        for x, _, future in chunk:
            end = start + x.shape[0]
            if not future.done():
                future.set_result(tuple(o[start:end] for o in outputs))
            start = end
