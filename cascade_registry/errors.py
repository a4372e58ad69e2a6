"""The registry's exceptions. Every one derives from :class:`RegistryError`; ``str()`` is one readable line
saying what was wrong and how to fix it.

    RegistryError
    ├── InvalidInputError      a malformed name, version range, kind, reason ...
    ├── NotFoundError          unknown model, version, consumer or declaration
    ├── ConflictError          duplicate version / sha256 / consumer, wrong status for the operation
    ├── BundleRejectedError    the bundle fails ModelBundle.load
    ├── GateError              release refused: no passing gate report bound to the bundle's sha256
    ├── CycleError             a declaration or upstream that would close a cascade cycle
    ├── CascadeBlockedError    release refused by the cascade rules (older pins, stale, unreleased pins)
    ├── OwnerError             a waiver from someone who is not the recorded owner of the affected model
    ├── RegistryUnavailableError  the database cannot be reached or opened
    └── LoginError             a console login with an unknown name, a wrong password or a disabled user
"""

from __future__ import annotations

__all__ = [
    "BundleRejectedError",
    "CascadeBlockedError",
    "ConflictError",
    "CycleError",
    "GateError",
    "InvalidInputError",
    "LoginError",
    "NotFoundError",
    "OwnerError",
    "RegistryError",
    "RegistryUnavailableError",
    "exit_status",
]


class RegistryError(Exception):
    """Base of every registry error: ``problem`` and an optional ``fix``."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} ({fix})" if fix else problem)


class InvalidInputError(RegistryError):
    """An argument that does not have the expected shape."""


class NotFoundError(RegistryError):
    """Something named does not exist in the registry."""


class ConflictError(RegistryError):
    """The operation clashes with what the registry already holds."""


class BundleRejectedError(RegistryError):
    """The bundle directory is not a loadable bundle."""


class GateError(RegistryError):
    """No passing gate report bound to the bundle's model file."""


class CycleError(RegistryError):
    """The change would make the cascade cyclic; ``cycle`` lists the names, first == last."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(
            f"refused: this would close the cascade cycle {' -> '.join(cycle)}",
            "a model cannot consume (directly or through others) its own outputs",
        )


class CascadeBlockedError(RegistryError):
    """A release the cascade rules refuse (see :mod:`cascade_registry.sql_release`); ``blocking`` names the
    versions in the way."""

    def __init__(self, problem: str, fix: str, blocking: list[str]) -> None:
        self.blocking = blocking
        super().__init__(problem, fix)


class OwnerError(RegistryError):
    """A waiver (or ownership claim) from someone who is not the recorded owner of the model it concerns."""


class RegistryUnavailableError(RegistryError):
    """The registry database cannot be reached, opened or migrated."""


class LoginError(RegistryError):
    """A console login that does not check out (the message never says which part was wrong)."""


def exit_status(error: RegistryError) -> int:
    """The documented exit code of a command that stopped on ``error``: 3 the registry cannot be reached,
    2 a usage error (bad input), 1 refused."""
    if isinstance(error, RegistryUnavailableError):
        return 3
    return 2 if isinstance(error, InvalidInputError) else 1
