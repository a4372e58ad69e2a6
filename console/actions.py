"""Login, logout and the actions (declare, release, waive, retire, revoke a key). Every action is a POST
with the session's CSRF token, needs an operator re-read from the registry, and calls the same
:class:`Registry` method as the CLI with the console user as actor."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cascade_registry import CascadeBlockedError, GateError, OwnerError
from cascade_registry.artifacts import ModelRef
from console.context import Console
from console.errors import ConsoleError, bad_request
from console.sessions import Session, check_csrf

__all__ = ["Actions"]

MAX_FORM = 16 * 1024


async def _form(request: Request) -> dict[str, str]:
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > MAX_FORM:
        raise ConsoleError(413, "Form too large", f"a console form is at most {MAX_FORM} bytes")
    form = await request.form(max_files=0, max_fields=20)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(request.state.session, values.get("csrf_token"))
    return values


def _field(form: dict[str, str], name: str, required: bool = True, limit: int = 500) -> str | None:
    value = (form.get(name) or "").strip()
    if not value:
        if required:
            raise bad_request(f"the form field {name!r} is empty", f"fill in {name}")
        return None
    if len(value) > limit:
        raise bad_request(f"the form field {name!r} is longer than {limit} characters")
    return value


def _ref(form: dict[str, str]) -> ModelRef:
    text = _field(form, "ref", limit=80) or ""
    try:
        return ModelRef.parse(text)
    except ValueError:
        raise bad_request(f"{text!r} is not NAME:VERSION", "e.g. churn:3") from None


class Actions:
    def __init__(self, console: Console) -> None:
        self.c = console

    def login_page(self, request: Request) -> Response:
        return self.c.render(request, "login.html", error=None, name="")

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        name, password = form.get("name", "")[:64], form.get("password", "")
        user = await run_in_threadpool(self.c.registry.login, name, password)
        session: Session = request.state.session
        session.user, session.role, session.dirty = user.name, user.role, True
        session.csrf = Session().csrf  # a new token for the new privilege level
        return RedirectResponse("/", status_code=303)

    async def logout(self, request: Request) -> Response:
        await _form(request)
        request.state.session = Session(dirty=True)
        return RedirectResponse("/", status_code=303)

    async def _operator(self, request: Request) -> tuple[dict[str, str], str]:
        if not self.c.settings.actions:
            raise ConsoleError(
                403,
                "Read-only console",
                "this console is read-only",
                "start it with 'lockgate console --actions'",
            )
        form = await _form(request)
        session: Session = request.state.session
        if session.user is None:
            raise ConsoleError(401, "Login needed", "actions need a logged-in console user", "log in first")
        user = await run_in_threadpool(self.c.registry.console_user, session.user)
        if user.disabled_at is not None or user.role != "operator":
            raise ConsoleError(403, "Not allowed", f"console user {user.name!r} ({user.role}) may not act")
        return form, user.name

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(lambda: fn(*args, **kwargs))

    async def release(self, request: Request) -> Response:
        form, actor = await self._operator(request)
        ref = _ref(form)
        waiver = _field(form, "waiver", required=False)
        try:
            # the logged-in operator is who waives: only the recorded owner of the affected models may
            await self._call(
                self.c.registry.release, ref, waiver=waiver, actor=actor, owner=actor if waiver else None
            )
        except (GateError, CascadeBlockedError, OwnerError) as e:
            blocked = isinstance(e, CascadeBlockedError)
            return self.c.render(request, "refused.html", status=409, ref=ref, error=e, blocked=blocked)
        return RedirectResponse(f"/models/{ref.name}/{ref.version}", status_code=303)

    async def retire(self, request: Request) -> Response:
        form, actor = await self._operator(request)
        ref = _ref(form)
        await self._call(self.c.registry.retire, ref, reason=_field(form, "reason"), actor=actor)
        return RedirectResponse(f"/models/{ref.name}/{ref.version}", status_code=303)

    async def declare(self, request: Request) -> Response:
        form, actor = await self._operator(request)
        consumer, model = _field(form, "consumer", limit=64), _field(form, "model", limit=64)
        versions = _field(form, "versions", required=False, limit=128)
        await self._call(self.c.registry.declare, consumer, model, versions, actor=actor)
        return RedirectResponse("/consumers", status_code=303)

    async def revoke_key(self, request: Request) -> Response:
        form, actor = await self._operator(request)
        consumer, key_id = _field(form, "consumer", limit=64), _field(form, "key_id", limit=32)
        await self._call(self.c.registry.revoke_key, consumer, key_id, actor=actor)
        return RedirectResponse("/consumers", status_code=303)
