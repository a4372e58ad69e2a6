"""Images of a bundle (reliability diagram, learning curves) served safely.

Only a plain file name listed in the version's stored manifest is served, read without following links,
and only when its sha256 still matches the manifest: no path traversal, no file swapped after register.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from cascade_registry.entities import ModelVersionInfo
from cascade_registry.manifest import ManifestError, read_bounded
from console.errors import ConsoleError

__all__ = ["bundle_image", "image_names"]

_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}\.png$")
_MAX_BYTES = 8 * 2**20


def image_names(info: ModelVersionInfo) -> list[str]:
    """The PNG files at the top of the bundle, as registered."""
    if info.manifest is None:
        return []
    return [f.path for f in info.manifest.files if _IMAGE.match(f.path)]


def bundle_image(info: ModelVersionInfo, filename: str) -> bytes:
    if not _IMAGE.match(filename) or filename not in image_names(info):
        raise ConsoleError(
            404,
            "Not found",
            f"{info.ref} has no image {filename[:80]!r}",
            "see the version page for its images",
        )
    expected = info.manifest.digests()[filename] if info.manifest else ""
    try:
        data = read_bounded(Path(info.bundle_path) / filename, _MAX_BYTES)
    except ManifestError as e:
        raise ConsoleError(410, "Image unavailable", f"{filename} of {info.ref} {e.problem}") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise ConsoleError(
            409,
            "Image changed",
            f"{filename} of {info.ref} changed since the version was registered",
            "re-register the bundle as a new version",
        )
    return data
