"""Where the registry is — one rule for every subcommand — and the settings of ``lockgate registry``.

The rule (``lockgate``, README and every ``--help`` say it the same way):

1. ``--registry-url URL`` when given (a path, ``sqlite:///PATH`` or ``postgresql+psycopg://USER@HOST/DB``);
2. else the environment variable ``LOCKGATE_REGISTRY_URL``;
3. else the SQLite file ``.lockgate/registry.db`` in the current directory.

Commands that only read (``registry list/show/impact/graph/audit``, ``key list``, ``consumer list``) and
``serve`` never create a registry: they stop with "no registry at ..." instead. This module is stdlib +
pydantic-settings only, so ``lockgate --help`` can print the rule without loading SQLAlchemy; the rule's
words (variable, default file, help line) are in :mod:`cascade_registry.location` (stdlib only).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic_settings import BaseSettings, SettingsConfigDict

from cascade_registry.location import DEFAULT_PATH, ENV_VAR, LOCATION_HELP

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "LOCATION_HELP",
    "RegistryLocation",
    "RegistrySettings",
    "locate_registry",
]

Source = Literal["--registry-url", "LOCKGATE_REGISTRY_URL", "default"]


class RegistrySettings(BaseSettings):
    """``LOCKGATE_REGISTRY_URL`` (see the rule above) and ``LOCKGATE_REGISTRY_ACTOR`` (default: the
    login name) — who is recorded in the audit log."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_REGISTRY_", extra="ignore")

    url: str | None = None
    actor: str | None = None


class RegistryLocation(BaseModel):
    """Where the registry is and which step of the rule chose it."""

    model_config = ConfigDict(frozen=True)

    url: str
    source: Source

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for a server database."""
        if self.url.startswith("sqlite:///"):
            return Path(self.url.removeprefix("sqlite:///"))
        return None if "://" in self.url else Path(self.url)

    @property
    def display(self) -> str:
        """The URL with any password hidden."""
        return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", self.url)

    def describe(self) -> str:
        """E.g. ``/srv/app/.lockgate/registry.db (the default: ./.lockgate/registry.db)``."""
        why = {
            "--registry-url": "from --registry-url",
            "LOCKGATE_REGISTRY_URL": f"from ${ENV_VAR}",
            "default": f"the default: ./{DEFAULT_PATH} in the current directory",
        }[self.source]
        path = self.sqlite_path
        return f"{path if path is not None else self.display} ({why})"


def _absolute(url: str, cwd: Path) -> str:
    """A relative SQLite path made absolute against ``cwd`` (other URLs unchanged)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path.startswith("/") or path.startswith(":memory:") or not path:
            return url
        return f"sqlite:///{(cwd / path).resolve()}"
    if "://" not in url:
        return str((cwd / Path(url).expanduser()).resolve())
    return url


def locate_registry(
    explicit: str | None = None, settings: RegistrySettings | None = None, cwd: Path | None = None
) -> RegistryLocation:
    """Apply the rule: ``explicit`` (the ``--registry-url`` value), else ``LOCKGATE_REGISTRY_URL``, else
    the default file. Relative SQLite paths are made absolute, so the answer names one file."""
    cwd = Path.cwd() if cwd is None else cwd
    if explicit is not None and explicit.strip():
        return RegistryLocation(url=_absolute(explicit.strip(), cwd), source="--registry-url")
    settings = RegistrySettings() if settings is None else settings
    if settings.url is not None and settings.url.strip():
        return RegistryLocation(url=_absolute(settings.url.strip(), cwd), source="LOCKGATE_REGISTRY_URL")
    return RegistryLocation(url=str((cwd / DEFAULT_PATH).resolve()), source="default")
