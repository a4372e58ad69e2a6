"""The manifest of a bundle: every file in it with its size and sha256, read without trusting the files.

:func:`manifest_of` walks the bundle directory (sub-directories included) with ``lstat`` and refuses
symbolic links, devices, FIFOs and sockets; every file is opened with ``O_NOFOLLOW`` and read at most to
the size ``fstat`` reported, so a file that is (or becomes) ``/dev/zero`` cannot make the reader run
forever. The gate's own output (``gate.json`` and its temporary files) is not part of the manifest: it
is the attestation *about* the manifest.

:func:`read_bounded` and :func:`load_json_bounded` are the one way the schema layer reads small files
of a bundle (card, gate report): regular file, not a link, at most ``max_bytes``, JSON nested at most
:data:`MAX_JSON_DEPTH` deep (a 50,000-deep card is refused, not a RecursionError).

This module is stdlib + pydantic only (the bottom of the import graph).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_BUNDLE_FILES",
    "MAX_BUNDLE_GB",
    "MAX_JSON_DEPTH",
    "ManifestEntry",
    "ManifestError",
    "Manifest",
    "json_depth",
    "load_json_bounded",
    "manifest_of",
    "read_bounded",
]

#: a bundle with more files than this is refused (a few are normal; external data may add dozens)
MAX_BUNDLE_FILES = 10_000
#: a bundle larger than this in total is refused
MAX_BUNDLE_GB = 16
#: JSON nested deeper than this is refused before validation (a card is about 6 levels deep)
MAX_JSON_DEPTH = 64
#: names the gate writes itself; excluded from the manifest it signs
EXCLUDED = ("gate.json",)
_CHUNK = 1 << 20


class ManifestError(Exception):
    """A bundle whose files cannot be listed safely. ``str()`` says which file and why."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ManifestEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="POSIX path relative to the bundle directory")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Manifest(BaseModel):
    """Every file of a bundle, sorted by path."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    files: list[ManifestEntry]

    def digests(self) -> dict[str, str]:
        return {f.path: f.sha256 for f in self.files}

    def differences(self, other: Manifest) -> list[str]:
        """Readable differences from ``self`` (what was checked) to ``other`` (what is there now)."""
        mine, theirs = self.digests(), other.digests()
        out = [f"{p} was added" for p in sorted(theirs.keys() - mine.keys())]
        out += [f"{p} is missing" for p in sorted(mine.keys() - theirs.keys())]
        out += [f"{p} changed" for p in sorted(mine.keys() & theirs.keys()) if mine[p] != theirs[p]]
        return out


def _excluded(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return rel in EXCLUDED or any(name.startswith(f".{x}.") for x in EXCLUDED)


def _hash_open_file(fd: int, path: Path, size: int) -> str:
    """sha256 of exactly ``size`` bytes of ``fd``; refuses a file that grew or shrank meanwhile."""
    h = hashlib.sha256()
    left = size
    while left > 0:
        block = os.read(fd, min(_CHUNK, left))
        if not block:
            raise ManifestError(path, "shrank while it was being read")
        h.update(block)
        left -= len(block)
    if os.read(fd, 1):
        raise ManifestError(path, "grew while it was being read")
    return h.hexdigest()


def _open_regular(path: Path) -> tuple[int, int]:
    """(fd, size) of a regular file opened without following links; raises :class:`ManifestError`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        if e.errno in {40, 31}:  # ELOOP (a link), EMLINK on some systems
            raise ManifestError(path, "is a symbolic link; the bundle must hold the file itself") from None
        raise ManifestError(path, f"cannot be opened: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ManifestError(path, "is not a regular file (device, FIFO or socket)")
    return fd, st.st_size


def read_bounded(path: Path | str, max_bytes: int) -> bytes:
    """The bytes of a regular file (not a link) of at most ``max_bytes``; raises :class:`ManifestError`."""
    path = Path(path)
    fd, size = _open_regular(path)
    try:
        if size > max_bytes:
            raise ManifestError(path, f"is {size / 2**20:.1f} MB, above the {max_bytes / 2**20:.1f} MB limit")
        data = b""
        while len(data) <= max_bytes:
            block = os.read(fd, min(_CHUNK, max_bytes + 1 - len(data)))
            if not block:
                return data
            data += block
        raise ManifestError(path, f"holds more than {max_bytes} bytes")
    finally:
        os.close(fd)


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, counted without recursion; stops counting at ``limit + 1``."""
    depth, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            depth = max(depth, level)
            if depth > limit:
                return depth
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return depth


def load_json_bounded(path: Path, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a small JSON file of a bundle: regular file, not a link, bounded size and nesting.

    Raises ``ValueError`` with a readable reason."""
    try:
        data = read_bounded(path, max_bytes)
    except ManifestError as e:
        raise ValueError(e.problem) from None
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError(f"is nested more than {max_depth} levels deep") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"is not readable JSON: {e}") from None
    if json_depth(value, max_depth) > max_depth:
        raise ValueError(f"is nested more than {max_depth} levels deep")
    return value


def manifest_of(
    bundle_dir: Path | str, *, max_files: int = MAX_BUNDLE_FILES, max_bytes: int = MAX_BUNDLE_GB * 2**30
) -> Manifest:
    """The manifest of every regular file under ``bundle_dir`` except the gate's own output.

    Raises :class:`ManifestError` for a link, a special file, too many files or too many bytes."""
    root = Path(bundle_dir)
    try:
        if not stat.S_ISDIR(root.lstat().st_mode):
            raise ManifestError(root, "is not a directory (or is a link to one)")
    except FileNotFoundError:
        raise ManifestError(root, "does not exist") from None
    entries: list[ManifestEntry] = []
    total = 0
    pending = [root]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as it:
            children = sorted(it, key=lambda e: e.name)
        for child in children:
            path = Path(child.path)
            rel = path.relative_to(root).as_posix()
            mode = child.stat(follow_symlinks=False).st_mode
            if _excluded(rel) and not stat.S_ISDIR(mode):
                continue  # the gate's output, whatever it is, is judged by whoever reads it
            if stat.S_ISLNK(mode):
                raise ManifestError(path, "is a symbolic link; the bundle must hold the file itself")
            if stat.S_ISDIR(mode):
                pending.append(path)
                continue
            if not stat.S_ISREG(mode):
                raise ManifestError(path, "is not a regular file (device, FIFO or socket)")
            if len(entries) >= max_files:
                raise ManifestError(root, f"holds more than {max_files} files")
            fd, size = _open_regular(path)
            try:
                total += size
                if total > max_bytes:
                    raise ManifestError(root, f"holds more than {max_bytes / 2**30:.0f} GB")
                entries.append(ManifestEntry(path=rel, size=size, sha256=_hash_open_file(fd, path, size)))
            finally:
                os.close(fd)
    return Manifest(files=sorted(entries, key=lambda e: e.path))
