"""Serve what was checked: a released bundle is loaded only when its files are the ones the registry stored.

At register time the registry takes the manifest of every file of the bundle (model, card, reference
data, external data, plots; :func:`cascade_registry.manifest.manifest_of`) and keeps the card; a release
needs a signed gate verdict over exactly that manifest. :func:`verify_release` re-takes the manifest
when the gateway loads a bundle and refuses it when anything differs (a file changed, added or removed,
a link or a special file appeared). The refusal names the model and the bundle-relative file names only,
never a file-system path (it is shown by ``/readyz``); it is logged and counted in
``lockgate_bundle_integrity_failures_total``. Other bundles are not affected.

The card served is the one stored at register time (:attr:`VerifiedRelease.card`), not the file read again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from cascade_registry.artifacts import ModelCard
from cascade_registry.manifest import ManifestError, manifest_of

from .errors import BundleRejectedError

__all__ = ["INTEGRITY_FAILURES", "VerifiedRelease", "verify_release"]

log = logging.getLogger("lockgate.serving")

INTEGRITY_FAILURES = Counter(
    "lockgate_bundle_integrity_failures",
    "Released bundles refused because their files differ from the manifest stored at register time",
    ["model"],
)


@dataclass(frozen=True)
class VerifiedRelease:
    card: ModelCard | None


def _refuse(model: str, key: str, problem: str, fix: str) -> BundleRejectedError:
    INTEGRITY_FAILURES.labels(model=model).inc()
    log.error("refusing %s: %s", key, problem)
    return BundleRejectedError(f"{key}: {problem}", fix)


def verify_release(release: Any) -> VerifiedRelease:
    """Check the files of ``release`` (a :class:`serving.catalog.Release`: name, version, bundle_path, the
    stored manifest and card) against its manifest; raise :class:`BundleRejectedError`."""
    name, version, manifest, card = release.name, release.version, release.manifest, release.card
    bundle_path = release.bundle_path
    key = f"{name}:{version}"
    if manifest is None:
        raise _refuse(
            name,
            key,
            "the registry holds no file manifest for it (registered before manifests existed)",
            "register and release the bundle again",
        )
    try:
        now = manifest_of(Path(bundle_path))
    except ManifestError as e:
        where = Path(e.path).name
        raise _refuse(
            name, key, f"its files cannot be read safely ({where} {e.problem})", "rebuild the bundle"
        ) from None
    changed = manifest.differences(now)
    if changed:
        more = f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
        raise _refuse(
            name,
            key,
            "its files are not the ones registered and gated: " + "; ".join(changed[:3]) + more,
            "restore the registered files, or register, gate and release a new version",
        )
    if card is not None and (card.ref.name, card.ref.version) != (name, version):
        raise _refuse(name, key, f"the stored card is for {card.ref}", "register the bundle again")
    return VerifiedRelease(card=card)
