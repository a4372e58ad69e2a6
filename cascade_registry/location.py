"""The registry location rule in words: the variable, the default file and the one-line help.

Stdlib only, so every ``--help`` can say the rule without importing pydantic; the rule itself is applied
by :func:`cascade_registry.settings.locate_registry`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_PATH", "ENV_VAR", "LOCATION_HELP"]

ENV_VAR = "LOCKGATE_REGISTRY_URL"
DEFAULT_PATH = Path(".lockgate") / "registry.db"
#: the rule in one line, for ``--help`` texts
LOCATION_HELP = f"registry: --registry-url URL, else ${ENV_VAR}, else ./{DEFAULT_PATH} (a SQLite file)"
