"""What is being served, and who may call it.

- :class:`Catalog` is an immutable snapshot: name -> :class:`ModelSlot` (predictor, validator,
  batcher) plus the released models that could not be loaded and why. Reloads build a new snapshot
  (loading new versions first, reusing unchanged ones) and swap one reference, so a request in flight
  keeps the predictor it started with and none fails during a swap.
- :class:`CanarySource` serves one bundle from disk; :class:`RegistrySource` serves every released
  version in the registry and is polled by ``generation()``.
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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .batcher import MicroBatcher
from .errors import BundleRejectedError
from .integrity import verify_release
from .metrics import BUNDLE_REFUSALS
from .predictor import OnnxPredictor
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


@dataclass(frozen=True)
class ModelSlot:
    predictor: OnnxPredictor
    validator: RowValidator
    batcher: MicroBatcher


@dataclass(frozen=True)
class Catalog:
    models: dict[str, ModelSlot] = field(default_factory=dict)
    #: "name:version" -> why it is not served
    missing: dict[str, str] = field(default_factory=dict)
    generation: int | None = None


class Source(Protocol):
    canary: bool

    def generation(self) -> int: ...

    def releases(self) -> list[Release]: ...

    def versions(self, name: str) -> list[dict[str, Any]]: ...

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

    def releases(self) -> list[Release]:
        from cascade_registry.artifacts import ModelBundle

        try:
            ref = ModelBundle.read_card(self.path).ref
        except Exception as e:  # InvalidBundleError: reported as missing by build_catalog
            return [Release(name=self.path.name, version=1, bundle_path=f"!{e}")]
        return [Release(ref.name, ref.version, str(self.path))]


class RegistrySource:
    """Every currently released version in the registry (``Registry.released()``)."""

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

    def close(self) -> None:
        self.registry.close()

    def releases(self) -> list[Release]:
        return [
            Release(
                name=info.ref.name,
                version=info.ref.version,
                bundle_path=info.bundle_path,
                onnx_sha256=info.onnx_sha256,
                released_at=info.released_at,
                manifest=info.manifest,
                card=info.card,
            )
            for info in self.registry.released()
        ]


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
    return ModelSlot(
        predictor=predictor,
        validator=RowValidator(predictor.card, settings.max_batch_rows),
        batcher=make_batcher(predictor),
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


def build_catalog(
    releases: list[Release],
    previous: Catalog,
    settings: ServeSettings,
    canary: bool,
    make_batcher: Callable[[OnnxPredictor], MicroBatcher],
    generation: int | None = None,
) -> Catalog:
    """Load what changed, reuse what did not; a version that fails to load is reported, not served."""
    models: dict[str, ModelSlot] = {}
    missing: dict[str, str] = {}
    for rel in releases:
        key = f"{rel.name}:{rel.version}"
        old = previous.models.get(rel.name)
        if (
            old is not None
            and old.predictor.version == rel.version
            and (rel.onnx_sha256 is None or old.predictor.sha256 == rel.onnx_sha256)
            and str(old.predictor.bundle.path) == str(Path(rel.bundle_path))
        ):
            models[rel.name] = old
            continue
        try:
            slot = _load_slot(rel, settings, canary, make_batcher)
        except Exception as e:  # any failure refuses this bundle alone, never the others
            metric_reason, reason = _refusal_reason(e)
            missing[key] = public_reason(reason, rel.bundle_path)
            BUNDLE_REFUSALS.labels(rel.name, metric_reason).inc()
            log.warning("not serving %s from %s: %s", key, rel.bundle_path.lstrip("!"), reason)
            if old is not None:
                models[rel.name] = old  # keep answering with the version that did pass
            continue
        models[rel.name] = slot
        log.info("loaded %s (sha256 %s…)", key, slot.predictor.sha256[:12])
    return Catalog(models=models, missing=missing, generation=generation)
