"""The exceptions of the safety gate.

::

    SafetyError                 base of every error raised by ``safety``
    ├── PolicyError             the policy file is missing, not TOML, or has bad values
    ├── SandboxError            the sandboxed worker could not be started (a harness problem, exit 2)
    ├── ReferenceDataError      reference.npz is missing or malformed (becomes a failed check's message)
    ├── GateUsageError          the bundle path cannot be gated at all (missing, not a directory, read-only)
    └── RevalidationError       a revalidation cannot be made: the cascade does not fit (a refusal)

A failing *model* is never an exception: it is a failed :class:`~cascade_registry.artifacts.CheckResult`.
"""

from __future__ import annotations

__all__ = [
    "GateUsageError",
    "PolicyError",
    "ReferenceDataError",
    "RevalidationError",
    "SafetyError",
    "SandboxError",
]


class SafetyError(Exception):
    """Base of the safety package's errors. ``str()`` says what went wrong and how to fix it."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} ({fix})" if fix else problem)


class PolicyError(SafetyError):
    """The gate policy could not be read or is invalid."""


class SandboxError(SafetyError):
    """The sandbox worker could not be started (not a verdict on the model)."""


class GateUsageError(SafetyError):
    """The bundle path cannot be gated (missing, not a directory, not writable)."""


class ReferenceDataError(SafetyError):
    """reference.npz is missing or does not match the card; the checks that need it fail with this reason."""


class RevalidationError(SafetyError):
    """A revalidation cannot be made (the cascade does not fit): a refusal, not a failed score."""
