"""Finding 9 (sign-in) and finding 10 (CSRF with a bogus bearer header)."""

from __future__ import annotations

import pytest
import werkzeug.security

from app.models import user as user_model
from tests.security.conftest import browser_login, csrf_from


def test_an_unknown_email_costs_a_password_hash_like_a_known_one(client, make, monkeypatch):
    """Answer time must not tell which emails have an account: both paths hash."""
    make.user(email="ana@example.com")
    calls: list[str] = []
    real = werkzeug.security.check_password_hash

    def counting(pwhash, password):
        calls.append(pwhash.split("$", 1)[0])
        return real(pwhash, password)

    monkeypatch.setattr(user_model, "check_password_hash", counting)
    for email in ("ana@example.com", "nobody@example.com"):
        calls.clear()
        assert browser_login(client, email, "wrong password!").status_code == 401
        assert len(calls) == 1, email
    assert user_model._DUMMY_HASH.split("$", 1)[0] == make.user().password_hash.split("$", 1)[0]


@pytest.fixture
def proxied_app(database_url, app, make):
    """The app as deployed behind one reverse proxy (``PROXY_COUNT=1``)."""
    from app import create_app

    make.user("admin")  # (with no user at all, /login leads to the first-admin set-up)
    behind = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "PROXY_COUNT": 1,
            "LOGIN_RATE_LIMIT": "3/minute",
            "LOGIN_ACCOUNT_RATE_LIMIT": "5/minute",
        }
    )
    behind.test_client_class = app.test_client_class
    yield behind
    with behind.app_context():  # its own engine: close its connections now, not at GC
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()


def _attempts(app, email: str, address: str, n: int, forwarded: bool = True) -> list[int]:
    client = app.test_client()
    headers = {"X-Forwarded-For": address} if forwarded else {}
    codes = []
    for _ in range(n):
        page = client.get("/login", headers=headers).get_data(as_text=True)
        data = {"email": email, "password": "wrong password!", "csrf_token": csrf_from(page)}
        codes.append(client.post("/login", data=data, headers=headers).status_code)
    return codes


def test_behind_a_proxy_each_client_address_has_its_own_limit(client, proxied_app, make):
    with proxied_app.app_context():
        a = _attempts(proxied_app, "x1@example.com", "203.0.113.1", 4)
        b = _attempts(proxied_app, "x2@example.com", "203.0.113.2", 3)
    assert a == [401, 401, 401, 429]
    assert b == [401, 401, 401]  # another agent in the office is not locked out


def test_without_a_proxy_a_forged_forwarded_for_does_not_dodge_the_limit(client, app, make):
    make.user("admin")
    app.config["LOGIN_RATE_LIMIT"] = "3/minute"
    codes = [_attempts(app, f"y{i}@example.com", f"198.51.100.{i}", 1)[0] for i in range(4)]
    assert codes[-1] == 429


def test_one_account_is_limited_whatever_the_address(client, proxied_app, make):
    with proxied_app.app_context():
        codes = [
            _attempts(proxied_app, "target@example.com", f"192.0.2.{i}", 1)[0] for i in range(6)
        ]
    assert codes == [401] * 5 + [429]


@pytest.mark.parametrize(
    "password", ["short1!", "password123", "qwertyuiop", "aaaaaaaaaaaa", "new@example.com"]
)
def test_weak_passwords_are_refused(client, make, password):
    admin = make.user("admin")
    resp = client.post(
        "/api/v1/users",
        json={"email": "new@example.com", "name": "New", "role": "agent", "password": password},
        headers=make.headers(admin),
    )
    assert resp.status_code == 422
    assert "password" in resp.get_json()["error"]["message"].lower()


def test_a_good_password_is_accepted(client, make):
    admin = make.user("admin")
    resp = client.post(
        "/api/v1/users",
        json={
            "email": "new@example.com",
            "name": "New",
            "role": "agent",
            "password": "tulip orbit canvas",
        },
        headers=make.headers(admin),
    )
    assert resp.status_code == 201


def test_a_bogus_bearer_header_does_not_skip_csrf_for_a_cookie_session(client, make):
    """Finding 10: a page on another site cannot add ``Authorization`` to skip the check."""
    agent = make.user()
    inbox = make.inbox(members=[agent])
    conv = make.inbound(inbox).conversation_id
    assert browser_login(client, agent.email).status_code == 302
    url = f"/api/v1/conversations/{conv}/messages"
    for header in ("Bearer nonsense", "Bearer ", "bearer x"):
        resp = client.post(
            url, json={"body": "forged", "private": True}, headers={"Authorization": header}
        )
        assert resp.status_code == 403, header
        assert resp.get_json()["error"]["code"] == "csrf_failed"
    token = make.token(agent)
    other = client.application.test_client()  # a script with a real token and no cookie
    resp = other.post(
        url,
        json={"body": "by script", "private": True},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 201
