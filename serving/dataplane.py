"""The data plane: one path from (caller, model, rows) to an answer, behind both /predict and /v2.

Order of checks for every prediction: key present and known (401; 503 when the registry cannot be asked)
-> the body is read (413/415) -> its structure is bounded and it is decoded (422) -> model and version
served (404) -> the registry's access decision for this consumer and model (403 undeclared) -> rows
valid for the card (413/422) -> ONNX Runtime via the micro-batcher (a composed model of a cascade: its
pinned upstream parts first, :mod:`serving.composition`) -> metrics. During a rollout of the model
(:mod:`serving.rollout`) a canary candidate may answer instead of the live version (chosen before the
rows are validated), and a shadow candidate runs after the live answer is built. Nothing about models is
revealed to a caller without a valid key. Domain errors are :class:`ServingError` subclasses; the
transport (``app.py``) turns them into HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import codecs, tensors
from .access import Decision, OpenAccess, RegistryAccess
from .batcher import MicroBatcher
from .capture import Capture, CaptureRecord
from .catalog import Catalog, ModelSlot, build_catalog
from .errors import AuthError, ForbiddenError, NotFoundError, ServingError
from .metrics import (
    MODEL_INFO,
    PREDICTED_ROWS,
    PROBABILITIES,
    ROLLOUT_METRICS,
    RequestMetrics,
)
from .predictor import OnnxPredictor
from .rollout import Decode, RolloutPlan, ShadowRunner, routes_to_candidate
from .settings import ServeSettings

__all__ = ["DataPlane", "merge_warnings", "parse_version"]

log = logging.getLogger("lockgate.serving")
_VERSION = re.compile(r"[1-9][0-9]{0,8}")  # ASCII digits only: '²'.isdigit() is True


def parse_version(version: str | None) -> int | None:
    """A version from a path or query (``None`` or ``""`` = the released one); 404 unless 1..999999999."""
    if version is None or version == "":
        return None
    if _VERSION.fullmatch(version) is None:
        raise NotFoundError(
            f"model version {version[:20]!r} is not a positive integer",
            "use the integer version (1, 2, ...), or omit it for the released one",
            code="unknown_version",
        )
    return int(version)


def merge_warnings(
    ranges: list[list[str]] | None, notes: list[list[str]] | None
) -> list[list[str]] | None:
    """Per-row warnings: out-of-range values, then unseen levels (None when no row has any)."""
    if notes is None:
        return ranges
    if ranges is None:
        return notes
    return [a + b for a, b in zip(ranges, notes, strict=True)]


def _int(text: str) -> int:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 12 else 0


def _missing_note(catalog: Catalog) -> str:
    if not catalog.missing:
        return ""
    return "; not loaded: " + "; ".join(f"{k} ({why})" for k, why in sorted(catalog.missing.items()))


class DataPlane:
    def __init__(
        self,
        settings: ServeSettings,
        source: Any,
        access: OpenAccess | RegistryAccess,
        capture: Capture | None = None,
    ) -> None:
        self.settings = settings
        #: sampled answered rows, written off the hot path (:mod:`serving.capture`); off without a sink
        self.capture = capture or Capture(None, 0.0)
        self.source = source
        self.access = access
        self.canary = bool(source.canary)
        self.catalog = Catalog()
        self.metrics = RequestMetrics(consumer_names=settings.metrics_consumer_names)
        self.max_containers = settings.max_batch_rows + 64
        self.loaded = False
        #: "name:version" -> why the registry marked it stale (shown by /readyz; it is still served)
        self.stale: dict[str, str] = {}
        self._poller: asyncio.Task | None = None
        self.shadows = ShadowRunner(settings.shadow_max_inflight, settings.shadow_max_rows)
        #: shadow candidates (name, version): their rows stay out of the served-probability histogram
        self._quiet: frozenset[tuple[str, int]] = frozenset()

    # ------------------------------------------------------------------------------------ lifecycle
    def _make_batcher(self, predictor: OnnxPredictor) -> MicroBatcher:
        name, version, classes, metrics = predictor.name, predictor.version, predictor.classes, self.metrics

        def on_batch(x: np.ndarray, probabilities: np.ndarray) -> None:
            metrics.batch(name, x.shape[0])
            if (name, version) not in self._quiet:
                PROBABILITIES.observe(name, classes, probabilities)

        return MicroBatcher(predictor, self.settings.max_ort_batch, self.settings.batching, on_batch)

    def reload(self) -> bool:
        """Re-read the source when its generation moved; True when the catalog was swapped."""
        generation = self.source.generation()
        if self.loaded and generation == self.catalog.generation:
            return False
        releases = self.source.releases()
        old = self.catalog
        new = build_catalog(
            releases,
            old,
            self.settings,
            self.canary,
            self._make_batcher,
            generation,
            edge_refusal=None if self.canary else self.source.edge_refusal,
            on_upstream_rows=self._upstream_counter,
        )
        self._quiet = frozenset(
            (r.candidate.predictor.name, r.candidate.predictor.version)
            for r in new.rollouts.values()
            if r.mode == "shadow"
        )
        self.catalog = new  # the atomic swap: one reference
        self.stale = {f"{r.name}:{r.version}": r.stale_reason for r in releases if r.stale_reason}
        self.access.invalidate()
        first, self.loaded = not self.loaded, True
        MODEL_INFO.set_models(
            [
                (slot.predictor.name, str(slot.predictor.version), slot.predictor.sha256,
                 slot.predictor.card.calibration.method, slot.role)
                for slot in new.slots.values()
            ]
        )
        served = self._served(new)
        if first:
            self._log_start(served, new)
        elif served != self._served(old) or new.missing != old.missing:
            log.info("now serving %s%s", ", ".join(served) or "nothing", _missing_note(new))
        return True

    def _upstream_counter(self, name: str, version: int) -> Callable[[int], None]:
        return functools.partial(PREDICTED_ROWS.add, name, version, "upstream")

    @staticmethod
    def _served(catalog: Catalog) -> list[str]:
        """Released versions, rollout candidates, then the versions loaded only as composition parts."""
        released = sorted(s.key for s in catalog.models.values())
        candidates = sorted(
            f"{r.candidate.key} ({r.mode}" + (f" {r.share:.2%})" if r.mode == "canary" else ")")
            for r in catalog.rollouts.values()
        )
        parts = sorted(f"{k} (pinned part)" for k, s in catalog.slots.items() if s.role == "pin")
        return released + candidates + parts

    def _log_start(self, served: list[str], catalog: Catalog) -> None:
        where = "canary bundle" if self.canary else f"registry {getattr(self.source, 'url', '')}".rstrip()
        if served:
            log.info("serving %s from the %s%s", ", ".join(served), where, _missing_note(catalog))
        else:
            log.warning(
                "serving nothing: the %s has no released model%s; release one with "
                "'lockgate registry release NAME:VERSION' (the gateway picks it up within %gs)",
                where,
                _missing_note(catalog),
                self.settings.poll_interval,
            )

    async def start(self) -> None:
        await asyncio.to_thread(self.reload)
        self.capture.start()
        if not self.canary:
            self._poller = asyncio.create_task(self._poll(), name="lockgate-registry-poller")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        await self.shadows.drain()
        await asyncio.to_thread(self.capture.stop)
        self.source.close()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                await asyncio.to_thread(self.reload)
            except Exception as e:  # keep serving the last good catalog; try again next tick
                self.access.poll_failed()
                log.warning(
                    "registry poll failed (%s: %s); still serving the previous set", type(e).__name__, e
                )
            else:
                self.access.poll_succeeded()

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
        rollout = self.catalog.rollouts.get(model)
        canary = rollout.candidate if rollout is not None and rollout.mode == "canary" else None
        if canary is not None and version == canary.predictor.version:
            return canary  # a canary candidate may also be asked for by its version
        if version is not None and version != slot.predictor.version:
            raise NotFoundError(
                f"version {version} of {model!r} is not being served; the released version is "
                f"{slot.predictor.version}",
                "omit 'version' to use the released version, or ask the owner to release it",
                code="unknown_version",
            )
        return slot

    async def identify(self, api_key: str | None) -> Decision:
        """Who is calling: 401 without a known, unrevoked key (before the body is read)."""
        if self.canary:
            return self.access.identify(api_key)
        if api_key is None:
            self.metrics.refusal("-", "missing_key")
            raise AuthError(
                "no API key: send the header 'Authorization: Bearer <key>'",
                "ask the model's owner for a key ('lockgate registry key issue <consumer>')",
                code="missing_key",
            )
        decision = self.access.identify_cached(api_key)
        if decision is None:
            decision = await asyncio.to_thread(self.access.identify, api_key)
        if decision.allowed:
            return decision
        self.metrics.refusal("-", decision.reason)
        raise AuthError(
            decision.message or f"API key refused ({decision.reason})",
            "ask the model's owner for a valid key ('lockgate registry key issue <consumer>')",
            code=decision.reason,
        )

    async def _authorize(self, who: Decision, model: str, version: int) -> Decision:
        """May this (identified) consumer call this model version: 403 when it did not declare it."""
        consumer = who.consumer or "-"
        decision = self.access.check(consumer, model, version)
        if decision is None:
            decision = await asyncio.to_thread(self.access.lookup, consumer, model, version)
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

    # ------------------------------------------------------------------------------------ rollouts
    async def _route(
        self, slot: ModelSlot, who: Decision, request_id: str | None, explicit: bool
    ) -> tuple[ModelSlot, RolloutPlan | None]:
        """The slot that answers, and the model's rollout in progress (None: none). A canary candidate
        answers its share of the requests that name no version, when the consumer may call its version."""
        plan = self.catalog.rollouts.get(slot.predictor.name)
        if plan is None or plan.mode != "canary" or explicit:
            return slot, plan
        if plan.sticky == "consumer" or request_id is not None:
            key = (who.consumer or "-") if plan.sticky == "consumer" else request_id
            chosen = routes_to_candidate(key, plan.share)  # sticky: the same key, the same version
        else:  # no id to be sticky to: the hash of a fresh random id is just a random draw
            chosen = random.random() < plan.share
        if not chosen:
            return slot, plan
        p = plan.candidate.predictor
        decision = self.access.check(who.consumer or "-", p.name, p.version)
        if decision is None:
            decision = await asyncio.to_thread(self.access.lookup, who.consumer or "-", p.name, p.version)
        return (plan.candidate if decision.allowed else slot), plan

    @staticmethod
    def _role(slot: ModelSlot, plan: RolloutPlan | None) -> str:
        """The rollout role of the version answering: ``canary`` for a canary candidate, else ``live``."""
        return "canary" if plan is not None and slot is plan.candidate else "live"

    async def _infer(
        self,
        slot: ModelSlot,
        plan: RolloutPlan | None,
        x: Any,
        cat: Any,
        decode: Decode,
        consumer: str | None,
        request_id: str,
    ) -> tuple[Any, Any, tuple[np.ndarray, ...]]:
        """Labels, probabilities and any further heads from ``slot``; during a rollout timed by role and
        mirrored to a shadow, whose answer the capture records with role ``shadow`` when it samples the
        request (the same request id as the live row)."""
        started = time.perf_counter()
        extra: tuple[np.ndarray, ...] = ()
        if slot.composition is None:
            labels, probabilities, *rest = await slot.batcher.predict_all(x, cat)
            extra = tuple(rest)
        else:
            labels, probabilities = await slot.composition.predict(x, cat)
        if plan is None:
            return labels, probabilities, extra
        p = slot.predictor
        seconds = time.perf_counter() - started
        ROLLOUT_METRICS.served(p.name, p.version, self._role(slot, plan), labels.shape[0], seconds)
        if plan.mode == "shadow":  # the same columns: the live rows themselves, else decoded for its card
            rows = (x, cat) if plan.alignment.same_rows else decode
            record = None
            if self.capture.wants(p.name, request_id):

                def record(candidate: ModelSlot, sx: Any, scat: Any, answer: tuple, at: float) -> None:
                    self._offer(candidate, consumer, request_id, sx, scat, *answer, at, role="shadow")

            self.shadows.offer(p.name, plan, rows, (labels, probabilities), record)
        return labels, probabilities, extra

    # ------------------------------------------------------------------------------------ predict
    def _offer(
        self, slot: ModelSlot, consumer: str | None, request_id: str, x: Any, cat: Any, labels: Any,
        probabilities: Any, started: float, role: str = "live",
    ) -> None:
        """Hand a sampled answer to the capture (references only; the writer thread does the rest).
        ``role``: ``live`` for the answer returned, ``shadow``/``canary`` for a candidate's."""
        p = slot.predictor
        table = slot.validator.table
        self.capture.offer(
            CaptureRecord(
                request_id, p.name, p.version, consumer or "-", role, time.time(), x, cat,
                slot.validator.names, [c.name for c in table.categorical], p.classes, labels, probabilities,
                (time.perf_counter() - started) * 1000.0,
            )
        )

    async def predict(self, who: Decision, body: bytes, request_id: str = "-") -> bytes:
        """``who`` is :meth:`identify`'s answer for the caller's key; ``request_id`` goes into the answer
        and the captured rows."""
        started = time.perf_counter()
        slot: ModelSlot | None = None
        consumer: str | None = who.consumer
        try:
            request = codecs.read_predict(body, self.max_containers, self.settings.max_json_depth)
            slot = self._slot(request.model, request.version)
            await self._authorize(who, request.model, slot.predictor.version)
            plan = None
            if self.catalog.rollouts:  # no rollout anywhere: no routing to do
                slot, plan = await self._route(slot, who, request_id, request.version is not None)

            def rows(validator: Any) -> tuple[Any, Any, Any]:
                """(numeric, categorical, per-row notes) for ``validator``'s card: the slot's, and a
                shadow candidate's when its columns differ."""
                if request.matrix is not None:
                    return validator.check_matrix(request.matrix), None, None
                if request.instances is None:
                    flags = (request.booleans, request.numbers_only)
                    return validator.to_matrix(request.inputs, "inputs", *flags), None, None
                return validator.from_instances(request.instances, booleans=request.booleans)

            def decode(validator: Any) -> tuple[Any, Any]:
                return rows(validator)[:2]

            x, cat, notes = rows(slot.validator)
            labels, probabilities, extra = await self._infer(slot, plan, x, cat, decode, consumer, request_id)
            p = slot.predictor
            prefix = slot.explained_prefix if request.explain else slot.answer_prefix
            prefix = f'{prefix},"request_id":"{request_id}"'
            warnings = merge_warnings(slot.validator.warnings(x), notes)
            if extra:  # a multi-output model: every head in the answer
                answer = codecs.encode_multi_output(prefix, p.classes, labels, probabilities, warnings,
                                                    p.extra_heads, extra)
            else:
                answer = codecs.encode_predictions(prefix, p.classes, labels, probabilities, warnings)
        except ServingError as e:
            self._count(slot, consumer, e.outcome, None)
            raise
        self._count(slot, consumer, "ok", started)
        PREDICTED_ROWS.add(p.name, p.version, "direct", labels.shape[0])
        if self.capture.wants(p.name, request_id):
            role = self._role(slot, plan)
            self._offer(slot, consumer, request_id, x, cat, labels, probabilities, started, role)
        return answer

    async def infer_v2(
        self,
        who: Decision,
        model: str,
        version: str | None,
        body: bytes,
        header_length: str | None,
        request_id: str = "-",
    ) -> bytes:
        started = time.perf_counter()
        slot: ModelSlot | None = None
        consumer: str | None = who.consumer
        try:
            asked = parse_version(version)
            slot = self._slot(model, asked)
            await self._authorize(who, model, slot.predictor.version)
            slot, plan = await self._route(slot, who, request_id, asked is not None)
            json_part = body if header_length is None else body[: max(0, min(len(body), _int(header_length)))]
            codecs.check_structure(json_part, self.max_containers, self.settings.max_json_depth)
            request = tensors.decode_v2_request(body, header_length, slot.validator)

            def decode(validator: Any) -> tuple[Any, Any]:
                again = tensors.decode_v2_request(body, header_length, validator)
                return again.numeric, again.categorical

            numeric, categorical = request.numeric, request.categorical
            labels, probabilities, _ = await self._infer(
                slot, plan, numeric, categorical, decode, consumer, request_id
            )
            p = slot.predictor
            warnings = merge_warnings(slot.validator.warnings(request.numeric), request.notes)
            answer = codecs.encode_v2(
                p.name, p.version, request.id, labels, probabilities, slot.metadata, p.classes, warnings,
                request_id,
            )
        except ServingError as e:
            self._count(slot, consumer, e.outcome, None)
            raise
        self._count(slot, consumer, "ok", started)
        PREDICTED_ROWS.add(p.name, p.version, "direct", labels.shape[0])
        if self.capture.wants(p.name, request_id):
            x, cat = request.numeric, request.categorical
            role = self._role(slot, plan)
            self._offer(slot, consumer, request_id, x, cat, labels, probabilities, started, role)
        return answer

    def count_edge_error(self, error: ServingError) -> None:
        """Errors found before the data plane (content type, body size) still count."""
        self.metrics.request("unknown", "-", "-", error.outcome, None)

    # ------------------------------------------------------------------------------------ reads
    def models(self) -> dict[str, Any]:
        """Served models with their compact identity (no card; that needs a key: :meth:`describe`)."""
        return {
            "models": [slot.metadata for slot in self.catalog.models.values()],
            "missing": self.catalog.missing,
            "canary": self.canary,
        }

    async def _may_read(self, api_key: str | None, model: str, version: int | None) -> ModelSlot:
        """The slot of a detail read: a declared consumer's key first, unless details are public."""
        if self.settings.public_details or self.canary:
            return self._slot(model, version)
        who = await self.identify(api_key)
        slot = self._slot(model, version)
        await self._authorize(who, model, slot.predictor.version)
        return slot

    async def describe(self, api_key: str | None, model: str, version: str | None = None) -> dict[str, Any]:
        """The served version's consumer card, plus every version the source knows with its status."""
        slot = await self._may_read(api_key, model, parse_version(version))
        raw = None if slot.composition is None else set(slot.validator.table.names)
        answer = slot.predictor.describe(slot.metadata, raw)
        answer["versions"] = await asyncio.to_thread(self.source.versions, model)
        return answer

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        catalog = self.catalog
        ready = self.loaded and bool(catalog.models) and not catalog.missing
        return ready, {
            "ready": ready,
            "serving": [s.key for s in catalog.models.values()],
            "parts": sorted(k for k, s in catalog.slots.items() if s.role == "pin"),
            "missing": catalog.missing,
            "generation": catalog.generation,
            "stale": self.stale,
            "rollouts": {
                name: {"mode": r.mode, "live": r.live_version, "candidate": r.candidate.predictor.version}
                | ({"share": r.share, "sticky": r.sticky} if r.mode == "canary" else {})
                for name, r in sorted(catalog.rollouts.items())
            },
        }

    def v2_ready(self, model: str, version: str | None = None) -> None:
        """Open Inference Protocol model readiness (no key: it says only whether the name is served)."""
        self._slot(model, parse_version(version))

    async def v2_metadata(
        self, api_key: str | None, model: str, version: str | None = None
    ) -> dict[str, Any]:
        slot = await self._may_read(api_key, model, parse_version(version))
        p = slot.predictor
        return {
            "name": p.name,
            "versions": [str(p.version)],
            "platform": "onnxruntime_onnx",
            "inputs": tensors.v2_inputs(slot.validator),
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(p.classes)]},
            ],
            "parameters": {
                "classes": ",".join(p.classes),
                "features": ",".join(slot.validator.table.names),
                "sha256": p.sha256,
            },
        }
