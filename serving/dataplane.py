"""The data plane: one path from (caller, model, rows) to an answer, behind both /predict and /v2.

Order of checks for every prediction: key present (401) -> model and version served (404) -> the
registry's access decision for this key and model (401 unknown/revoked key, 403 undeclared) -> rows
valid for the card (413/422) -> ONNX Runtime via the micro-batcher -> metrics. Domain errors are
:class:`ServingError` subclasses; the transport (``app.py``) turns them into HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import numpy as np

from . import codecs
from .batcher import MicroBatcher
from .catalog import Catalog, Decision, ModelSlot, OpenAccess, RegistryAccess, build_catalog
from .errors import AuthError, ForbiddenError, NotFoundError, ServingError
from .metrics import MODEL_INFO, PROBABILITIES, RequestMetrics
from .predictor import OnnxPredictor
from .settings import ServeSettings

__all__ = ["DataPlane"]

log = logging.getLogger("lockgate.serving")


class DataPlane:
    def __init__(self, settings: ServeSettings, source: Any, access: OpenAccess | RegistryAccess) -> None:
        self.settings = settings
        self.source = source
        self.access = access
        self.canary = bool(source.canary)
        self.catalog = Catalog()
        self.metrics = RequestMetrics()
        self.loaded = False
        self._poller: asyncio.Task | None = None

    # ------------------------------------------------------------------------------------ lifecycle
    def _make_batcher(self, predictor: OnnxPredictor) -> MicroBatcher:
        name, classes, metrics = predictor.name, predictor.classes, self.metrics

        def on_batch(x: np.ndarray, probabilities: np.ndarray) -> None:
            metrics.batch(name, x.shape[0])
            PROBABILITIES.observe(name, classes, probabilities)

        return MicroBatcher(predictor, self.settings.max_ort_batch, self.settings.batching, on_batch)

    def reload(self) -> bool:
        """Re-read the source when its generation moved; True when the catalog was swapped."""
        generation = self.source.generation()
        if self.loaded and generation == self.catalog.generation:
            return False
        releases = self.source.releases()
        old = self.catalog
        new = build_catalog(releases, old, self.settings, self.canary, self._make_batcher, generation)
        self.catalog = new  # the atomic swap: one reference
        self.access.invalidate()
        self.loaded = True
        for name, slot in old.models.items():
            p = slot.predictor
            if new.models.get(name) is not slot:
                MODEL_INFO.remove(p.name, str(p.version), p.sha256, p.card.calibration.method)
        for slot in new.models.values():
            p = slot.predictor
            MODEL_INFO.labels(p.name, str(p.version), p.sha256, p.card.calibration.method).set(1)
        return True

    async def start(self) -> None:
        await asyncio.to_thread(self.reload)
        if not self.canary:
            self._poller = asyncio.create_task(self._poll(), name="lockgate-registry-poller")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        self.source.close()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                if await asyncio.to_thread(self.reload):
                    log.info("registry changed: now serving %s", sorted(self.catalog.models))
            except Exception as e:  # keep serving the last good catalog; try again next tick
                log.warning(
                    "registry poll failed (%s: %s); still serving the previous set", type(e).__name__, e
                )

    # ------------------------------------------------------------------------------------ checks
    def _slot(self, model: str, version: int | None) -> ModelSlot:
        slot = self.catalog.models.get(model)
        if slot is None:
            missing = [k for k in self.catalog.missing if k.split(":")[0] == model]
            if missing:
                raise NotFoundError(
                    f"model {model!r} is released but not loaded: {self.catalog.missing[missing[0]]}",
                    "see GET /readyz; fix the bundle and release it again",
                )
            raise NotFoundError(
                f"no model named {model!r} is being served",
                f"served models: {sorted(self.catalog.models)} (GET /models)",
                code="unknown_model",
            )
        if version is not None and version != slot.predictor.version:
            raise NotFoundError(
                f"version {version} of {model!r} is not being served; the released version is "
                f"{slot.predictor.version}",
                "omit 'version' to use the released version, or ask the owner to release it",
                code="unknown_version",
            )
        return slot

    async def _authorize(self, api_key: str | None, model: str, version: int) -> Decision:
        if api_key is None and not self.canary:
            self.metrics.refusal(model, "missing_key")
            raise AuthError(
                "no API key: send the header 'Authorization: Bearer <key>'",
                "ask the model's owner for a key ('lockgate registry key issue <consumer>')",
                code="missing_key",
            )
        decision = self.access.check(api_key, model, version)
        if decision is None:
            decision = await asyncio.to_thread(self.access.lookup, api_key, model, version)
        if decision.allowed:
            return decision
        self.metrics.refusal(model, decision.reason)
        if decision.reason == "undeclared":
            raise ForbiddenError(
                decision.message,
                f"ask the owner of {model!r} to run 'lockgate registry declare {decision.consumer} {model}'",
                code="undeclared",
            )
        raise AuthError(
            decision.message or f"API key refused ({decision.reason})",
            "ask the model's owner for a valid key ('lockgate registry key issue <consumer>')",
            code=decision.reason,
        )

    def _count(
        self, slot: ModelSlot | None, consumer: str | None, outcome: str, started: float | None
    ) -> None:
        if slot is None:
            self.metrics.request("unknown", "-", "-", outcome, None)
            return
        p = slot.predictor
        seconds = None if started is None else time.perf_counter() - started
        self.metrics.request(p.name, str(p.version), consumer or "-", outcome, seconds)

    # ------------------------------------------------------------------------------------ predict
    async def predict(self, api_key: str | None, body: bytes) -> bytes:
        started = time.perf_counter()
        slot: ModelSlot | None = None
        consumer: str | None = None
        try:
            request = codecs.decode_predict(body)
            slot = self._slot(request.model, request.version)
            consumer = (await self._authorize(api_key, request.model, slot.predictor.version)).consumer
            x = slot.validator.to_matrix(request.inputs)
            labels, probabilities = await slot.batcher.predict(x)
            answer = codecs.encode_predictions(
                slot.predictor.answer_prefix,
                slot.predictor.classes,
                labels,
                probabilities,
                slot.validator.warnings(x),
            )
        except ServingError as e:
            self._count(slot, consumer, e.outcome, None)
            raise
        self._count(slot, consumer, "ok", started)
        return answer

    async def infer_v2(
        self, api_key: str | None, model: str, version: str | None, body: bytes, header_length: str | None
    ) -> bytes:
        started = time.perf_counter()
        slot: ModelSlot | None = None
        consumer: str | None = None
        try:
            slot = self._slot(model, self._v2_version(version))
            consumer = (await self._authorize(api_key, model, slot.predictor.version)).consumer
            request = codecs.decode_v2(body, header_length, slot.predictor.n_features)
            slot.validator.check_count(request.matrix.shape[0])
            x = slot.validator.check_values(request.matrix, "inputs[0].data")
            labels, probabilities = await slot.batcher.predict(x)
            p = slot.predictor
            answer = codecs.encode_v2(p.name, p.version, request.id, labels, probabilities, p.metadata)
        except ServingError as e:
            self._count(slot, consumer, e.outcome, None)
            raise
        self._count(slot, consumer, "ok", started)
        return answer

    @staticmethod
    def _v2_version(version: str | None) -> int | None:
        if version is None or version == "":
            return None
        if not version.isdigit():
            raise NotFoundError(
                f"model version {version!r} is not a positive integer",
                "use the integer version, or omit it",
                code="unknown_version",
            )
        return int(version)

    def count_edge_error(self, error: ServingError) -> None:
        """Errors found before the data plane (content type, body size) still count."""
        self.metrics.request("unknown", "-", "-", error.outcome, None)

    # ------------------------------------------------------------------------------------ reads
    def models(self) -> dict[str, Any]:
        return {
            "models": [slot.predictor.metadata for slot in self.catalog.models.values()],
            "missing": self.catalog.missing,
            "canary": self.canary,
        }

    async def describe(self, model: str, version: int | None = None) -> dict[str, Any]:
        """The served version's card, plus every version the source knows with its status."""
        answer = self._slot(model, version).predictor.describe()
        answer["versions"] = await asyncio.to_thread(self.source.versions, model)
        return answer

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        catalog = self.catalog
        ready = self.loaded and bool(catalog.models) and not catalog.missing
        return ready, {
            "ready": ready,
            "serving": [f"{s.predictor.name}:{s.predictor.version}" for s in catalog.models.values()],
            "missing": catalog.missing,
            "generation": catalog.generation,
        }

    def v2_metadata(self, model: str, version: str | None = None) -> dict[str, Any]:
        p = self._slot(model, self._v2_version(version)).predictor
        return {
            "name": p.name,
            "versions": [str(p.version)],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, p.n_features]}],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(p.classes)]},
            ],
            "parameters": {
                "classes": ",".join(p.classes),
                "features": ",".join(p.feature_names),
                "sha256": p.sha256,
            },
        }
