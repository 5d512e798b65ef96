"""Finding 4: sign-ins, remember cookies and API tokens can be revoked.

A copied session or remember cookie used to keep working after signing out,
after a password reset and after deactivation (the remember cookie was the same
``<id>|<HMAC>`` at every sign-in). Each sign-in now has its own key, which both
cookies carry and which signing out, a password change, a deactivation or
"sign out everywhere" deletes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from app.clock import now
from tests.security.conftest import browser_login, csrf_from


def _cookies(client) -> dict[str, str]:
    return {c.key: c.value for c in client._cookies.values()}


def _replay(app, cookies: dict[str, str]):
    """A new browser that only has the given cookies; answers GET /api/v1/me."""
    other = app.test_client()
    for name, value in cookies.items():
        other.set_cookie(name, value)
    return other.get("/api/v1/me")


@pytest.fixture
def agent(make, client):
    # (``client`` makes every test client drop the previous request's user, as browsers do)
    return make.user("agent", name="Ana Agent")


def _signed_in(app, agent, remember=True):
    client = app.test_client()
    assert browser_login(client, agent.email, remember=remember).status_code == 302
    return client


def test_a_copied_session_or_remember_cookie_dies_with_sign_out(app, agent):
    client = _signed_in(app, agent)
    stolen = _cookies(client)
    assert {"session", "remember_token"} <= stolen.keys()
    assert _replay(app, stolen).status_code == 200
    assert _replay(app, {"remember_token": stolen["remember_token"]}).status_code == 200

    token = csrf_from(client.get("/").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302

    assert _replay(app, {"session": stolen["session"]}).status_code == 401
    assert _replay(app, {"remember_token": stolen["remember_token"]}).status_code == 401


def test_each_sign_in_has_its_own_remember_cookie(app, agent):
    first = _cookies(_signed_in(app, agent))["remember_token"]
    second = _cookies(_signed_in(app, agent))["remember_token"]
    assert first != second
    assert _replay(app, {"remember_token": first}).status_code == 200  # two browsers, both in


@pytest.mark.parametrize(
    "change", [{"password": "a new long passphrase 7"}, {"active": False}], ids=["password", "off"]
)
def test_a_password_change_or_deactivation_ends_every_sign_in(app, client, make, agent, change):
    laptop, phone = _cookies(_signed_in(app, agent)), _cookies(_signed_in(app, agent))
    admin = make.user("admin")
    resp = client.patch(f"/api/v1/users/{agent.id}", json=change, headers=make.headers(admin))
    assert resp.status_code == 200, resp.get_json()
    for stolen in (laptop, phone):
        assert _replay(app, {"session": stolen["session"]}).status_code == 401
        assert _replay(app, {"remember_token": stolen["remember_token"]}).status_code == 401


def test_sign_out_everywhere(app, agent):
    laptop = _signed_in(app, agent)
    phone = _cookies(_signed_in(app, agent))
    sessions = laptop.get("/api/v1/me/sessions").get_json()["items"]
    assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1
    token = csrf_from(laptop.get("/").get_data(as_text=True))
    resp = laptop.delete("/api/v1/me/sessions", headers={"X-CSRFToken": token})
    assert resp.status_code == 204
    assert laptop.get("/api/v1/me").status_code == 401
    assert _replay(app, phone).status_code == 401
    assert _replay(app, {"remember_token": phone["remember_token"]}).status_code == 401


def test_production_cookies_are_secure_and_same_site(app, agent):
    """Both cookies as production sets them (its cookie settings on this app, over HTTPS)."""
    from config import ProductionConfig

    cookie_settings = {
        k: getattr(ProductionConfig, k)
        for k in dir(ProductionConfig)
        if k.startswith(("SESSION_COOKIE_", "REMEMBER_COOKIE_"))
    }
    assert cookie_settings["SESSION_COOKIE_SECURE"] and cookie_settings["REMEMBER_COOKIE_SECURE"]
    app.config.update(cookie_settings)
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    resp = browser_login(client, agent.email, remember=True)
    assert resp.status_code == 302
    cookies = resp.headers.getlist("Set-Cookie")
    for name in ("session", "remember_token"):
        (line,) = [c for c in cookies if c.startswith(name + "=")]
        assert "Secure" in line and "HttpOnly" in line and "SameSite=Lax" in line, line


def test_api_tokens_are_listed_revoked_and_expire(client, make, agent):
    auth = make.headers(agent)
    created = client.post(
        "/api/v1/me/tokens", json={"name": "script", "expires_in_days": 1}, headers=auth
    )
    assert created.status_code == 201
    body = created.get_json()
    new = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/api/v1/me", headers=new).status_code == 200
    listed = client.get("/api/v1/me/tokens", headers=auth).get_json()["items"]
    assert [t["name"] for t in listed] == ["api", "script"]
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert listed[1]["expires_at"] is not None and listed[1]["last_used_at"] is not None

    with time_machine.travel(now() + timedelta(days=1, minutes=1)):
        assert client.get("/api/v1/me", headers=new).status_code == 401

    assert client.delete(f"/api/v1/me/tokens/{body['id']}", headers=auth).status_code == 204
    assert client.get("/api/v1/me", headers=new).status_code == 401
    other = make.user()
    theirs = client.get("/api/v1/me/tokens", headers=make.headers(other)).get_json()["items"]
    assert (
        client.delete(
            f"/api/v1/me/tokens/{listed[0]['id']}", headers=make.headers(other)
        ).status_code
        == 404
    )
    assert len(theirs) == 1
    bad = client.post("/api/v1/me/tokens", json={"expires_in_days": 0}, headers=auth)
    assert bad.status_code == 422
