"""The gate policy: every limit the checks apply, read from a TOML file over documented defaults.

The schema (:class:`GatePolicy`, shared with the registry, which compares a verdict's policy with its
own minimum) lives in :mod:`cascade_registry.gate_policy`. The defaults live in
``safety/default_policy.toml`` (shipped with the package, read through :mod:`importlib.resources`); a user
policy file only needs the keys it changes.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cascade_registry.gate_policy import GatePolicy
from safety.errors import PolicyError

__all__ = [
    "DEFAULT_POLICY_RESOURCE",
    "GatePolicy",
    "default_policy_text",
    "load_policy",
    "policy_from_toml",
]

DEFAULT_POLICY_RESOURCE = "default_policy.toml"


def policy_from_toml(text: str, source: str = "<policy>") -> GatePolicy:
    """Parse policy TOML (only the keys to change are needed); raise :class:`PolicyError`."""
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"{source} is not valid TOML: {e}", "fix the syntax of the policy file") from None
    try:
        return GatePolicy.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in e.errors()[:5]
        )
        raise PolicyError(
            f"{source} has invalid values: {problems}",
            "see docs/safety.md or safety/default_policy.toml for the keys and their ranges",
        ) from None


def default_policy_text() -> str:
    """The text of the shipped default policy file."""
    return resources.files("safety").joinpath(DEFAULT_POLICY_RESOURCE).read_text(encoding="utf-8")


def load_policy(path: Path | str | None = None) -> GatePolicy:
    """The policy in ``path``, or the shipped default when ``path`` is None."""
    if path is None:
        return policy_from_toml(default_policy_text(), source=f"safety/{DEFAULT_POLICY_RESOURCE}")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(
            f"policy file {path} does not exist", "pass an existing TOML file to --policy"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError(
            f"policy file {path} cannot be read: {e}", "pass a readable UTF-8 TOML file"
        ) from None
    return policy_from_toml(text, source=str(path))
