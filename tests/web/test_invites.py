"""Inviting teammates by email: the invitation, its one-time link, resend and revoke."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import time_machine

from app.clock import now
from tests.browser.conftest import run_worker
from tests.channels.harness import smtp_sink  # noqa: F401  (pytest fixture)
from tests.security.conftest import csrf_from

PASSWORD = "a long new passphrase 42"


@pytest.fixture
def mail(app, smtp_sink):  # noqa: F811
    """Mail configured: the app's account mail goes to a local SMTP sink."""
    sink, port = smtp_sink
    app.config.update(
        NOTIFY_SMTP_URL=f"smtp://127.0.0.1:{port}",
        NOTIFY_FROM="team@shop.example",
        PUBLIC_URL="https://inbox.shop.example",
    )
    return sink


def _invite(client, headers, **body):
    body = {"email": "new.person@example.com", "role": "agent", **body}
    return client.post("/api/v1/users/invite", json=body, headers=headers)


def _path(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def _accept(app, path, name="Noor Haddad", password=PASSWORD, locale="fr"):
    """Open the link in a new browser and submit the form; returns (browser, answer)."""
    browser = app.test_client()
    page = browser.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    data = {
        "csrf_token": csrf_from(page.get_data(as_text=True)),
        "name": name,
        "password": password,
        "locale": locale,
    }
    return browser, browser.post(path, data=data)


def _no_secret(body: dict | list, *secrets: str) -> None:
    text = repr(body)
    for secret in secrets:
        assert secret not in text
    assert "token" not in text and "hash" not in text and "nonce" not in text


def test_without_mail_the_admin_gets_the_link_and_the_person_joins(app, client, make):
    admin = make.user("admin", name="Ada Admin")
    h = make.headers(admin)
    resp = _invite(client, h, role="lead", name="Noor")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (
        body["mail"] == "off"
        and body["role"] == "lead"
        and body["email"] == "new.person@example.com"
    )
    link = body["link"]
    assert re.match(r"http://localhost/invite/[\w-]{40,}$", link)
    assert body["invited_by"] == {"id": admin.id, "name": "Ada Admin"}
    days = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")) - now()
    assert timedelta(days=6, hours=23) < days <= timedelta(days=7)

    # the list shows it, never its link or anything of the token
    listed = client.get("/api/v1/invites", headers=h).get_json()
    assert [i["email"] for i in listed["items"]] == ["new.person@example.com"]
    assert listed["mail"] is False
    token = link.rsplit("/", 1)[1]
    _no_secret(listed, token)
    assert "link" not in listed["items"][0]

    browser, answer = _accept(app, _path(link))
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    me = browser.get("/api/v1/me").get_json()
    assert me["email"] == "new.person@example.com" and me["role"] == "lead"
    assert me["name"] == "Noor Haddad"
    from flask_babel import refresh

    refresh()  # the test's app context outlives requests: forget the last page's language
    page = browser.get("/").get_data(as_text=True)
    assert '<html lang="fr"' in page  # their language, chosen on the form

    # used: the link now explains itself, the invite left the list, the user is on the team
    refresh()
    again = app.test_client().get(_path(link))
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)
    assert client.get("/api/v1/invites", headers=h).get_json()["items"] == []
    users = client.get("/api/v1/users", headers=h).get_json()["items"]
    assert "new.person@example.com" in [u["email"] for u in users]


def test_with_mail_the_link_is_mailed_by_the_worker_and_never_returned(app, client, make, mail):
    admin = make.user("admin", name="Ada Admin")
    h = make.headers(admin)
    body = _invite(client, h, email="Noor@Example.com").get_json()
    assert body["mail"] == "queued" and "link" not in body
    assert body["email"] == "noor@example.com"
    assert mail.received == []  # never from the request itself
    run_worker(app)
    msg = mail.last()
    assert msg["To"] == "noor@example.com"
    assert "Ada Admin invited you" in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    link = re.search(r"https://inbox\.shop\.example/invite/\S+", text).group(0)
    listed = client.get("/api/v1/invites", headers=h).get_json()
    assert listed["items"][0]["mail"] == "sent"
    _no_secret(listed, link.rsplit("/", 1)[1])

    browser, answer = _accept(app, _path(link), locale="pt")
    assert answer.status_code == 302
    assert browser.get("/api/v1/me").get_json()["email"] == "noor@example.com"


def test_a_refused_smtp_is_retried_and_shown_to_admins(app, client, make, mail):
    admin = make.user("admin")
    h = make.headers(admin)
    mail.reply = "451 Try again later"
    _invite(client, h)
    run_worker(app)
    item = client.get("/api/v1/invites", headers=h).get_json()["items"][0]
    assert item["mail"] == "failing" and "Try again later" in item["mail_error"]
    from app.models import OutboxItem

    row = make.db.session.query(OutboxItem).filter_by(kind="account_mail").one()
    assert row.state == "pending" and row.attempts == 1  # retried later, not lost
    mail.reply = None
    row.next_attempt_at = now()
    make.db.session.commit()
    run_worker(app)
    assert len(mail.received) == 1
    assert client.get("/api/v1/invites", headers=h).get_json()["items"][0]["mail"] == "sent"


def test_inviting_twice_renews_the_one_invitation_and_resend_kills_the_old_link(app, client, make):
    admin = make.user("admin")
    h = make.headers(admin)
    first = _invite(client, h).get_json()
    second = _invite(client, h, role="admin")
    assert second.status_code == 200
    assert second.get_json()["id"] == first["id"] and second.get_json()["role"] == "admin"
    assert len(client.get("/api/v1/invites", headers=h).get_json()["items"]) == 1
    old = app.test_client().get(_path(first["link"]))
    assert old.status_code == 404 and "newer one" in old.get_data(as_text=True)

    resent = client.post(f"/api/v1/invites/{first['id']}/resend", headers=h)
    assert resent.status_code == 200
    newest = resent.get_json()["link"]
    assert app.test_client().get(_path(second.get_json()["link"])).status_code == 404
    _, answer = _accept(app, _path(newest))
    assert answer.status_code == 302


def test_expired_and_revoked_links_get_a_clear_page(app, client, make):
    admin = make.user("admin")
    h = make.headers(admin)
    expiring = _invite(client, h, email="late@example.com").get_json()
    revoked = _invite(client, h, email="gone@example.com").get_json()
    assert client.delete(f"/api/v1/invites/{revoked['id']}", headers=h).status_code == 204
    page = app.test_client().get(_path(revoked["link"]))
    assert page.status_code == 410 and "withdrawn" in page.get_data(as_text=True)
    assert client.delete(f"/api/v1/invites/{revoked['id']}", headers=h).status_code == 404

    with time_machine.travel(now() + timedelta(days=7, minutes=1), tick=False):
        page = app.test_client().get(_path(expiring["link"]))
        assert page.status_code == 410 and "expired" in page.get_data(as_text=True)
        item = client.get("/api/v1/invites", headers=h).get_json()["items"][0]
        assert item["expired"] is True
        # a resend renews it for another 7 days
        link = client.post(f"/api/v1/invites/{expiring['id']}/resend", headers=h).get_json()["link"]
        assert app.test_client().get(_path(link)).status_code == 200


def test_an_address_already_on_the_team_is_refused_with_a_reason(client, make):
    admin = make.user("admin")
    make.user("agent", email="taken@example.com")
    resp = _invite(client, make.headers(admin), email="Taken@example.com")
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "already_member"
    assert "already" in resp.get_json()["error"]["message"]
    bad = _invite(client, make.headers(admin), email="not-an-address")
    assert bad.status_code == 422
    bad = _invite(client, make.headers(admin), role="owner")
    assert bad.status_code == 422


def test_a_weak_password_is_refused_on_the_form_and_the_link_still_works(app, client, make):
    admin = make.user("admin")
    link = _invite(client, make.headers(admin)).get_json()["link"]
    _, answer = _accept(app, _path(link), password="password123")
    assert answer.status_code == 422
    assert "not a common one" in answer.get_data(as_text=True)
    _, answer = _accept(app, _path(link))
    assert answer.status_code == 302


@pytest.mark.parametrize("role", ["agent", "lead"])
def test_only_admins_may_touch_invitations(client, make, role):
    admin = make.user("admin")
    invite_id = _invite(client, make.headers(admin)).get_json()["id"]
    h = make.headers(make.user(role))
    calls = [
        _invite(client, h, email="x@example.com"),
        client.get("/api/v1/invites", headers=h),
        client.post(f"/api/v1/invites/{invite_id}/resend", headers=h),
        client.delete(f"/api/v1/invites/{invite_id}", headers=h),
    ]
    assert [c.status_code for c in calls] == [403, 403, 403, 403]
    for c in calls:
        _no_secret(c.get_json())


def test_the_invite_page_asks_for_a_csrf_token(app, client, make):
    admin = make.user("admin")
    link = _invite(client, make.headers(admin)).get_json()["link"]
    resp = app.test_client().post(_path(link), data={"name": "X", "password": PASSWORD})
    assert resp.status_code == 400
    assert client.get("/api/v1/invites", headers=make.headers(admin)).get_json()["items"]
