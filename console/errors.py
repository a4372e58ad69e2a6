"""What the console answers when something goes wrong: a page with a status, a problem and a fix.

HTTP statuses live here only: :func:`status_of` maps the registry's errors onto them.
"""

from __future__ import annotations

from cascade_registry import (
    BundleRejectedError,
    CascadeBlockedError,
    ConflictError,
    CycleError,
    GateError,
    InvalidInputError,
    LoginError,
    NotFoundError,
    OwnerError,
    RegistryError,
    RegistryUnavailableError,
)

__all__ = ["ConsoleError", "bad_request", "status_of", "title_of"]

_STATUS: list[tuple[type[RegistryError], int, str]] = [
    (InvalidInputError, 400, "Bad input"),
    (NotFoundError, 404, "Not found"),
    (GateError, 409, "Refused by the safety gate"),
    (CascadeBlockedError, 409, "Refused by the cascade rules"),
    (CycleError, 409, "Refused: cascade cycle"),
    (OwnerError, 403, "Refused: not the owner"),
    (ConflictError, 409, "Conflict"),
    (BundleRejectedError, 422, "Bundle rejected"),
    (LoginError, 401, "Login failed"),
    (RegistryUnavailableError, 503, "Registry unavailable"),
]


class ConsoleError(Exception):
    """A request the console refuses itself (bad form, forged token, expired session, too long...)."""

    def __init__(self, status: int, title: str, problem: str, fix: str = "") -> None:
        self.status = status
        self.title = title
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} ({fix})" if fix else problem)


def status_of(error: RegistryError) -> int:
    return next((s for cls, s, _ in _STATUS if isinstance(error, cls)), 400)


def title_of(error: RegistryError) -> str:
    return next((t for cls, _, t in _STATUS if isinstance(error, cls)), "Refused")


def bad_request(problem: str, fix: str = "") -> ConsoleError:
    return ConsoleError(400, "Bad input", problem, fix)
