"""Login, CSRF, expiring sessions and the actions, each landing in the audit log with the console user."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from console import create_app
from console.sessions import COOKIE, Session, SessionCodec
from tests.console.conftest import PASSWORD, csrf_of, login, registry, settings_for


def _actions(reg, actor: str) -> list[str]:
    return [e.action for e in reg.audit() if e.actor == actor]


def test_login_release_retire_declare_revoke_with_console_actor(client, world) -> None:
    token = login(client)
    assert "alice (operator)" in client.get("/").text
    page = client.get("/models/churn/2").text
    assert 'id="release-form"' in page and "Impact of releasing churn:2" in page
    world.register_stale_candidate()
    r = client.post("/actions/release", data={"ref": "churn:2", "csrf_token": token})
    assert r.status_code == 200 and 'id="version-status">released' in r.text  # scorer:1 stays on churn:1
    r = client.post("/actions/release", data={"ref": "scorer:2", "csrf_token": token})
    assert r.status_code == 409 and "is stale" in r.text and 'id="waiver"' in r.text  # cascade: waive it
    data = {"ref": "scorer:2", "waiver": "scorer revalidated by hand", "csrf_token": token}
    r = client.post("/actions/release", data=data)
    assert r.status_code == 200 and 'id="version-status">released' in r.text
    r = client.post("/actions/release", data={"ref": "bad:1", "csrf_token": token})
    assert r.status_code == 409 and "failed the safety gate" in r.text and "quality" in r.text
    r = client.post("/actions/retire", data={"ref": "churn:1", "reason": "replaced", "csrf_token": token})
    assert r.status_code == 409 and "pinned to churn:1" in r.text  # released scorer:1 is composed with it
    r = client.post("/actions/retire", data={"ref": "bad:1", "reason": "replaced", "csrf_token": token})
    assert r.status_code == 200 and "retired" in r.text
    r = client.post(
        "/actions/declare", data={"consumer": "web", "model": "scorer", "versions": "", "csrf_token": token}
    )
    assert r.status_code == 200
    r = client.post(
        "/actions/revoke-key", data={"consumer": "web", "key_id": world.key_id, "csrf_token": token}
    )
    assert r.status_code == 200
    with registry(world.url) as reg:
        assert reg.get("churn:2").status == "released"
        assert reg.keys("web")[0].revoked_at is not None
        done = _actions(reg, "alice")
    assert done == [
        "console.login",
        *("stale", "stale", "supersede", "release"),  # churn:2: scorer:1 and scorer:2 were trained on churn:1
        *("supersede", "release"),  # scorer:2, waived by its owner
        *("retire", "declare", "key.revoke"),
    ], done
    audit = client.get("/audit?actor=alice").text
    assert "churn:2" in audit and "release" in audit


def test_wrong_password_viewer_and_read_only(client, world) -> None:
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"name": "alice", "password": "nope", "csrf_token": token})
    assert r.status_code == 401 and "wrong console user name or password" in r.text
    r = client.post("/login", data={"name": "nobody", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 401
    token = login(client, "bob")
    r = client.post("/actions/release", data={"ref": "churn:2", "csrf_token": token})
    assert r.status_code == 403 and "may not act" in r.text
    read_only = create_app(settings_for(world.url).model_copy(update={"actions": False}))
    with TestClient(read_only, raise_server_exceptions=False) as c:
        assert "Log in" not in c.get("/").text
        token = login(c)
        assert 'id="release-form"' not in c.get("/models/churn/2").text
        r = c.post("/actions/release", data={"ref": "churn:2", "csrf_token": token})
        assert r.status_code == 403 and "read-only" in r.text
    read_only.state.console.close()


def test_forged_or_missing_csrf_token_is_refused(client, world) -> None:
    login(client)
    for data in [{"ref": "churn:2", "csrf_token": "forged"}, {"ref": "churn:2"}]:
        r = client.post("/actions/release", data=data)
        assert r.status_code == 403 and "security token does not match" in r.text
    with registry(world.url) as reg:
        assert reg.get("churn:2").status == "gated_passed"


def test_stale_session_is_a_401_and_tampered_cookie_is_ignored(world) -> None:
    app = create_app(settings_for(world.url, session_minutes=1 / 60))
    with TestClient(app, raise_server_exceptions=False) as c:
        token = login(c)
        time.sleep(2.2)
        r = c.post("/actions/release", data={"ref": "churn:2", "csrf_token": token})
        assert r.status_code == 401 and "session expired" in r.text
        assert "Your session expired" in r.text and "alice (operator)" not in c.get("/").text
    app.state.console.close()
    forged = SessionCodec("another-secret", 3600).dumps(Session(user="alice", role="operator", csrf="t"))
    app = create_app(settings_for(world.url))
    with TestClient(app, raise_server_exceptions=False, cookies={COOKIE: forged}) as c:
        assert "alice (operator)" not in c.get("/").text
        r = c.post("/actions/release", data={"ref": "churn:2", "csrf_token": "t"})
        assert r.status_code == 403
    app.state.console.close()


def test_bad_forms(client) -> None:
    token = login(client)
    r = client.post("/actions/release", data={"ref": "not a ref", "csrf_token": token})
    assert r.status_code == 400 and "NAME:VERSION" in r.text
    r = client.post("/actions/release", data={"ref": "nosuch:1", "csrf_token": token})
    assert r.status_code == 404
    r = client.post("/actions/retire", data={"ref": "churn:2", "reason": "x" * 600, "csrf_token": token})
    assert r.status_code == 400
    r = client.post("/actions/declare", data={"consumer": "web", "model": "x" * 10_000, "csrf_token": token})
    assert r.status_code in (400, 413)
    r = client.post(
        "/actions/release",
        content=b"a" * 20_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413
    assert "Traceback" not in r.text
