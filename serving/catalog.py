"""What is being served, and who may call it.

- :class:`Catalog` is an immutable snapshot: every loaded ``name:version`` -> :class:`ModelSlot`
  (predictor, validator, batcher, and for a downstream model of a cascade its :class:`Composition` with
  the pinned upstream slots), ``name`` -> the released version's slot (what direct callers get), plus the
  versions that could not be served and why. Reloads build a new snapshot (loading new versions first,
  reusing unchanged ones) and swap one reference, so a request in flight keeps the predictor it started
  with and none fails during a swap.
- :class:`CanarySource` serves one bundle from disk (never composed: it takes every feature of its card);
  :class:`RegistrySource` serves the registry's serving plan (every released version, plus the versions
  released models pin without their being released: role ``pin``, composition parts only) and is polled
  by ``generation()``. A composition is only ever along a declared edge: a downstream model whose
  model-consumer declaration does not cover its pinned upstream version, or whose pinned version is not
  loaded, is not served (``/readyz`` names it and why).
- A rollout in progress (the registry's ``shadow`` or ``canary`` candidate of a model, role ``shadow`` /
  ``canary`` in the plan) is loaded and composed like any served version and kept in
  ``Catalog.rollouts`` (name -> :class:`~serving.rollout.RolloutPlan`); the data plane decides per
  request (:mod:`serving.rollout`). It is unrelated to :class:`CanarySource`.
- Who may call what is :mod:`serving.access`.

A bundle that cannot be served is refused alone, whatever goes wrong with it (a schema error, a card
nested 50,000 deep, a gate report that is a link to ``/dev/zero``, a corrupt model): it is logged with
its path, counted in ``lockgate_bundle_refusals_total`` and named in ``/readyz`` with a reason that
carries no file-system path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .batcher import MicroBatcher
from .composition import Composition, CompositionError, Upstream, compose_parts, derived_features, raw_card
from .errors import BundleRejectedError
from .integrity import verify_release
from .metrics import BUNDLE_REFUSALS
from .predictor import OnnxPredictor
from .rollout import Alignment, RolloutPlan
from .settings import ServeSettings
from .validation import RowValidator

__all__ = [
    "CanarySource",
    "Catalog",
    "ModelSlot",
    "RegistrySource",
    "Release",
    "build_catalog",
    "public_reason",
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
    #: the registry's record: every file's sha256 and the card, both as registered (None in canary mode)
    manifest: Any = None
    card: Any = None
    #: "release" answers direct callers; "pin" is loaded only as a part of a composed model; "shadow" /
    #: "canary": the candidate of a rollout in progress
    role: str = "release"
    #: the effective pins of this version: upstream name -> version
    pins: dict[str, int] = field(default_factory=dict)
    #: a rollout candidate's share of direct requests, what its hash is sticky to, and the live version
    share: float = 1.0
    sticky: str = "request_id"
    live_version: int | None = None
    #: why the registry marked this version stale (an older upstream, drift on live traffic), else None
    stale_reason: str | None = None


@dataclass(frozen=True)
class ModelSlot:
    predictor: OnnxPredictor
    #: the request's columns: for a composed model its raw columns only
    validator: RowValidator
    batcher: MicroBatcher
    role: str = "release"
    composition: Composition | None = None
    #: the answer's model block and its serialised prefixes (a composed model lists the upstreams used)
    metadata: dict[str, Any] = field(default_factory=dict)
    answer_prefix: str = ""
    explained_prefix: str = ""

    @classmethod
    def of(cls, predictor: OnnxPredictor, validator: RowValidator, batcher: MicroBatcher) -> ModelSlot:
        return cls(
            predictor,
            validator,
            batcher,
            metadata=predictor.metadata,
            answer_prefix=predictor.answer_prefix,
            explained_prefix=predictor.explained_prefix,
        )

    @property
    def key(self) -> str:
        return f"{self.predictor.name}:{self.predictor.version}"

    async def infer(self, x: Any, categorical: Any) -> Any:
        """Labels and probabilities for this slot's request columns (composed: upstreams first)."""
        if self.composition is None:
            return await self.batcher.predict(x, categorical)
        return await self.composition.predict(x, categorical)


@dataclass(frozen=True)
class Catalog:
    #: name -> the released version's slot (what a direct caller gets)
    models: dict[str, ModelSlot] = field(default_factory=dict)
    #: "name:version" -> why it is not served
    missing: dict[str, str] = field(default_factory=dict)
    generation: int | None = None
    #: "name:version" -> every served slot, released or a composition part (role "pin")
    slots: dict[str, ModelSlot] = field(default_factory=dict)
    #: "name:version" -> the loaded, uncomposed slot (reused by the next reload)
    loaded: dict[str, ModelSlot] = field(default_factory=dict)
    #: name -> its shadow or canary rollout in progress (candidate loaded, live version served)
    rollouts: dict[str, RolloutPlan] = field(default_factory=dict)


class Source(Protocol):
    canary: bool

    def generation(self) -> int: ...

    def releases(self) -> list[Release]: ...

    def versions(self, name: str) -> list[dict[str, Any]]: ...

    def edge_refusal(self, consumer: str, upstream: str, version: int) -> str | None: ...

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

    def edge_refusal(self, consumer: str, upstream: str, version: int) -> str | None:
        return "a canary serves one bundle and composes nothing"

    def releases(self) -> list[Release]:
        from cascade_registry.artifacts import ModelBundle

        try:
            ref = ModelBundle.read_card(self.path).ref
        except Exception as e:  # InvalidBundleError: reported as missing by build_catalog
            return [Release(name=self.path.name, version=1, bundle_path=f"!{e}")]
        return [Release(ref.name, ref.version, str(self.path))]


class RegistrySource:
    """The registry's serving plan (``Registry.serving_plan()``): released versions and pinned parts."""

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

    def edge_refusal(self, consumer: str, upstream: str, version: int) -> str | None:
        """Why model ``consumer`` may not be composed with ``upstream:version`` (None: it may): it needs a
        model-consumer declaration on ``upstream``, read fresh from the registry at every reload. Which
        version it is composed with is the registry's effective pin (``serving_plan``), not the declared
        range, so moving a pin never opens a window of refusals."""
        if not self.registry.declarations(consumer, upstream):
            return f"{consumer} has no model-consumer declaration for {upstream}"
        return None

    def close(self) -> None:
        self.registry.close()

    def releases(self) -> list[Release]:
        return [
            Release(
                name=entry.info.ref.name,
                version=entry.info.ref.version,
                bundle_path=entry.info.bundle_path,
                onnx_sha256=entry.info.onnx_sha256,
                released_at=entry.info.released_at if entry.role == "release" else None,
                manifest=entry.info.manifest,
                card=entry.info.card,
                role=entry.role,
                pins=dict(entry.pins),
                stale_reason=(entry.info.stale_reason or "stale") if entry.info.stale else None,
                **_rollout_fields(entry.rollout),
            )
            for entry in self.registry.serving_plan()
        ]


def _rollout_fields(rollout: Any) -> dict[str, Any]:
    if rollout is None:
        return {}
    return {"share": rollout.share, "sticky": rollout.sticky, "live_version": rollout.live.version}


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
    stored = None if canary else verify_release(rel)
    predictor = OnnxPredictor.from_bundle(
        rel.bundle_path,
        released_at=rel.released_at,
        canary=canary,
        intra_op_threads=settings.intra_op_threads,
        card=stored.card if stored else None,
    )
    if (predictor.name, predictor.version) != (rel.name, rel.version):
        raise BundleRejectedError(
            f"the bundle holds {predictor.name}:{predictor.version}, not {key}", "register the bundle again"
        )
    if rel.onnx_sha256 is not None and predictor.sha256 != rel.onnx_sha256:
        raise BundleRejectedError(
            "model.onnx changed since it was registered", "register and release the bundle again"
        )
    return ModelSlot.of(
        predictor,
        RowValidator(predictor.card, settings.max_batch_rows, settings.allow_extra_columns),
        make_batcher(predictor),
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


def _reusable(old: ModelSlot | None, rel: Release) -> bool:
    return (
        old is not None
        and old.predictor.version == rel.version
        and (rel.onnx_sha256 is None or old.predictor.sha256 == rel.onnx_sha256)
        and str(old.predictor.bundle.path) == str(Path(rel.bundle_path))
        and old.predictor.released_at == rel.released_at  # a promoted candidate answers with its release time
    )


def _load_all(
    releases: list[Release],
    previous: Catalog,
    settings: ServeSettings,
    canary: bool,
    make_batcher: Callable[[OnnxPredictor], MicroBatcher],
) -> tuple[dict[str, ModelSlot], dict[str, str]]:
    """Every version of the plan loaded (or reused) uncomposed, and why the others are refused."""
    loaded: dict[str, ModelSlot] = {}
    missing: dict[str, str] = {}
    for rel in releases:
        key = f"{rel.name}:{rel.version}"
        old = previous.loaded.get(key)
        if _reusable(old, rel):
            loaded[key] = old  # type: ignore[assignment]
            continue
        try:
            slot = _load_slot(rel, settings, canary, make_batcher)
        except Exception as e:  # any failure refuses this bundle alone, never the others
            metric_reason, reason = _refusal_reason(e)
            missing[key] = public_reason(reason, rel.bundle_path)
            BUNDLE_REFUSALS.labels(rel.name, metric_reason).inc()
            log.warning("not serving %s from %s: %s", key, rel.bundle_path.lstrip("!"), reason)
            continue
        loaded[key] = slot
        log.info("loaded %s (sha256 %s…)", key, slot.predictor.sha256[:12])
    return loaded, missing


class _Composer:
    """Resolves each slot of the plan into what is served: composed with its pinned upstream slots."""

    def __init__(
        self,
        releases: list[Release],
        loaded: dict[str, ModelSlot],
        missing: dict[str, str],
        settings: ServeSettings,
        edge_refusal: Callable[[str, str, int], str | None] | None,
        on_upstream_rows: Callable[[str, int], Callable[[int], None]],
    ) -> None:
        self.releases = {f"{r.name}:{r.version}": r for r in releases}
        self.loaded, self.missing, self.settings = loaded, missing, settings
        self.edge_refusal, self.on_upstream_rows = edge_refusal, on_upstream_rows
        self.served: dict[str, ModelSlot] = {}
        self._visiting: set[str] = set()

    def resolve(self, key: str) -> ModelSlot:
        """The served slot of ``key``; raises :class:`CompositionError` saying why it cannot be served."""
        if key in self.served:
            return self.served[key]
        base = self.loaded.get(key)
        if base is None:
            raise CompositionError(self.missing.get(key) or "it is not in the serving plan (retired?)")
        card = base.predictor.card
        if (not card.upstream and not derived_features(card)) or self.edge_refusal is None:
            self.served[key] = base
            return base
        if key in self._visiting:
            raise CompositionError(f"{key} is part of a cycle")
        self._visiting.add(key)
        try:
            slot = self._compose(base, self.releases[key])
        finally:
            self._visiting.discard(key)
        self.served[key] = slot
        return slot

    def _compose(self, base: ModelSlot, rel: Release) -> ModelSlot:
        p, ups = base.predictor, []
        for ref in p.card.upstream:
            version = rel.pins.get(ref.name)
            if version is None:
                raise CompositionError(f"the registry holds no pin of {p.name}:{p.version} on {ref.name}")
            refusal = self.edge_refusal(p.name, ref.name, version) if self.edge_refusal else None
            if refusal is not None:
                raise CompositionError(f"composition along an undeclared edge refused: {refusal}")
            upkey = f"{ref.name}:{version}"
            try:
                up = self.resolve(upkey)
            except CompositionError as e:
                raise CompositionError(f"its pinned upstream {upkey} cannot be served: {e}") from None
            if version == ref.version and ref.onnx_sha256 and ref.onnx_sha256 != up.predictor.sha256:
                raise CompositionError(
                    f"{upkey}'s model.onnx is not the one {p.name}:{p.version} was trained on"
                )
            columns, counter = up.validator.table.columns, self.on_upstream_rows(ref.name, version)
            ups.append(
                Upstream(ref, version, up.predictor.sha256, up.predictor.classes, columns, up.infer, counter)
            )
        settings = self.settings
        validator = RowValidator(raw_card(p.card), settings.max_batch_rows, settings.allow_extra_columns)
        composition = compose_parts(p.card, validator.table.columns, ups, base.batcher.predict)
        metadata = {**p.metadata, "upstream": composition.used}
        answer, explained = p.prefixes(metadata)
        return replace(
            base,
            validator=validator,
            composition=composition,
            metadata=metadata,
            answer_prefix=answer,
            explained_prefix=explained,
        )


def _alignment(live: ModelSlot, candidate: ModelSlot) -> Alignment:
    same_rows = live.validator.table.columns == candidate.validator.table.columns
    return Alignment.between(live.predictor.classes, candidate.predictor.classes, same_rows)


def _as_canary(slot: ModelSlot) -> ModelSlot:
    """A canary candidate's answers say so: ``"rollout": "canary"`` in their model block."""
    metadata = {**slot.metadata, "rollout": "canary"}
    answer, explained = slot.predictor.prefixes(metadata)
    return replace(slot, metadata=metadata, answer_prefix=answer, explained_prefix=explained)


def build_catalog(
    releases: list[Release],
    previous: Catalog,
    settings: ServeSettings,
    canary: bool,
    make_batcher: Callable[[OnnxPredictor], MicroBatcher],
    generation: int | None = None,
    edge_refusal: Callable[[str, str, int], str | None] | None = None,
    on_upstream_rows: Callable[[str, int], Callable[[int], None]] = lambda name, version: lambda n: None,
) -> Catalog:
    """Load what changed, reuse what did not, compose downstream models with their pinned upstream slots
    (``edge_refusal`` None: compose nothing); a version that cannot be served is reported, not served."""
    loaded, missing = _load_all(releases, previous, settings, canary, make_batcher)
    composer = _Composer(releases, loaded, missing, settings, edge_refusal, on_upstream_rows)
    models: dict[str, ModelSlot] = {}
    slots: dict[str, ModelSlot] = {}
    for rel in releases:
        key = f"{rel.name}:{rel.version}"
        try:
            slot = composer.resolve(key)
        except CompositionError as e:
            if key not in missing:
                missing[key] = public_reason(str(e))
                log.warning("not serving %s: %s", key, missing[key])
            old = previous.models.get(rel.name)
            if rel.role == "release" and old is not None and old.predictor.version != rel.version:
                models[rel.name] = old  # keep answering with the version that did pass
            continue
        slots[key] = replace(slot, role=rel.role) if slot.role != rel.role else slot
        if rel.role == "canary":
            slots[key] = _as_canary(slots[key])
        if rel.role == "release":
            models[rel.name] = slots[key]
    rollouts = {
        rel.name: RolloutPlan(
            rel.role,
            rel.share,
            rel.sticky,
            rel.live_version,
            slots[f"{rel.name}:{rel.version}"],
            _alignment(models[rel.name], slots[f"{rel.name}:{rel.version}"]),
        )
        for rel in releases
        if rel.role in ("shadow", "canary")
        and f"{rel.name}:{rel.version}" in slots
        and rel.name in models
        and models[rel.name].predictor.version == rel.live_version
    }
    return Catalog(
        models=models, missing=missing, generation=generation, slots=slots, loaded=loaded, rollouts=rollouts
    )
