"""Signed, expiring session cookies and the CSRF token each one carries.

The cookie holds ``{"u": user or None, "r": role, "c": csrf token}``, signed with the console's secret and
timestamped; older than ``session_minutes`` it is *expired* (a clear 401 on any form), tampered with it is
ignored. Every POST form carries the session's token; :func:`check_csrf` compares in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Literal

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from console.errors import ConsoleError

__all__ = ["COOKIE", "Session", "SessionCodec", "check_csrf"]

COOKIE = "lockgate_console"
State = Literal["new", "valid", "expired"]


@dataclass
class Session:
    user: str | None = None
    role: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    state: State = "new"
    dirty: bool = False

    @property
    def operator(self) -> bool:
        return self.user is not None and self.role == "operator"


class SessionCodec:
    """Turns sessions into cookie values and back (``max_age`` seconds)."""

    def __init__(self, secret: str, max_age: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="lockgate-console-session")
        self.max_age = max_age

    def dumps(self, session: Session) -> str:
        return self._serializer.dumps({"u": session.user, "r": session.role, "c": session.csrf})

    def loads(self, cookie: str | None) -> Session:
        if not cookie or len(cookie) > 4096:
            return Session(dirty=True)
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age)
        except SignatureExpired:
            return Session(state="expired", dirty=True)
        except BadSignature:
            return Session(dirty=True)
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return Session(dirty=True)
        return Session(user=data.get("u"), role=data.get("r"), csrf=data["c"], state="valid")


def check_csrf(session: Session, token: object) -> None:
    """Refuse a form whose token is not this session's (or whose session expired)."""
    if session.state == "expired":
        raise ConsoleError(
            401, "Session expired", "your console session expired before this form was sent", "log in again"
        )
    if session.state != "valid" or not isinstance(token, str) or not hmac.compare_digest(token, session.csrf):
        raise ConsoleError(
            403,
            "Form refused",
            "the form's security token does not match your session (a forged or outdated form)",
            "reload the page and send the form again",
        )
