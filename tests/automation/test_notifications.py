"""Notification settings, live delivery with the desktop flag, and email when offline."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller

from app.extensions import socketio
from app.inbox import assignment
from app.models import Notification, OutboxItem
from tests.automation.helpers import T0, conv_of, deliver, notes, online


class Sink:
    """An SMTP server that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp(app):
    """A local SMTP sink; the app's notification mail goes there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(
        NOTIFY_SMTP_URL=f"smtp://127.0.0.1:{port}",
        NOTIFY_FROM="alerts@shop.example",
        NOTIFY_EMAIL_DELAY=120,
        PUBLIC_URL="https://inbox.shop.example",
    )
    yield sink
    controller.stop()


def test_settings_have_defaults_and_can_be_changed(app, make, client):
    ana = make.user()
    headers = make.headers(ana)
    body = client.get("/api/v1/me/notification-settings", headers=headers).get_json()
    kinds = {k["kind"]: k for k in body["kinds"]}
    assert kinds["assigned"] | {"label": ""} == {
        "kind": "assigned",
        "label": "",
        "in_app": True,
        "desktop": True,
        "email": True,
    }
    assert kinds["window_closing"]["in_app"] and kinds["new_conversation"]["in_app"]
    assert not kinds["new_conversation"]["email"]
    assert body["email"] == {"address": ana.email, "available": False}
    resp = client.patch(
        "/api/v1/me/notification-settings",
        headers=headers,
        json={"kinds": {"assigned": {"desktop": False}, "new_conversation": {"in_app": True}}},
    )
    assert resp.status_code == 200
    kinds = {k["kind"]: k for k in resp.get_json()["kinds"]}
    assert kinds["assigned"]["desktop"] is False and kinds["assigned"]["in_app"] is True
    assert kinds["new_conversation"]["in_app"] is True
    for bad in (
        {"kinds": {"nope": {"email": True}}},
        {"kinds": {"assigned": {"email": "yes"}}},
        {"kinds": {"assigned": {"sms": True}}},
    ):
        assert (
            client.patch("/api/v1/me/notification-settings", headers=headers, json=bad).status_code
            == 422
        )


def test_kinds_switched_off_are_not_shown_and_the_desktop_flag_is_in_the_event(
    app, make, session, client
):
    ana, lead = make.user(name="Ana"), make.user("lead", name="Lee")
    inbox = make.inbox("messenger", members=[ana])
    headers = make.headers(ana)
    sock = socketio.test_client(app, auth={"token": make.token(ana)})
    sock.get_received()
    client.patch(
        "/api/v1/me/notification-settings",
        headers=headers,
        json={
            "kinds": {
                "assigned": {"desktop": False},
                "new_conversation": {"in_app": True, "desktop": True},
            }
        },
    )
    msg = make.inbound(inbox, contact="9100", text="hi")
    client.post(
        f"/api/v1/conversations/{msg.conversation_id}/assign",
        json={"assignee_id": ana.id},
        headers=make.headers(lead),
    )
    got = [m["args"][0] for m in sock.get_received() if m["name"] == "notification.created"]
    assert [(n["kind"], n["desktop"]) for n in got] == [
        ("new_conversation", True),
        ("assigned", False),
    ]
    assert got[0]["data"]["text"].startswith("New conversation with")

    client.patch(
        "/api/v1/me/notification-settings",
        headers=headers,
        json={"kinds": {"assigned": {"in_app": False, "email": False}}},
    )
    other = make.inbound(inbox, contact="9101", text="hello")
    client.post(
        f"/api/v1/conversations/{other.conversation_id}/assign",
        json={"assignee_id": ana.id},
        headers=make.headers(lead),
    )
    assert [
        m
        for m in sock.get_received()
        if m["name"] == "notification.created" and m["args"][0]["kind"] == "assigned"
    ] == []
    listed = client.get("/api/v1/notifications", headers=headers).get_json()["items"]
    assert [n["kind"] for n in listed].count("assigned") == 1
    sock.disconnect()


def test_email_goes_out_from_the_worker_only_when_the_agent_is_not_online(
    app, make, session, clock, smtp
):
    ana, bo, lead = make.user(name="Ana"), make.user(name="Bo"), make.user("lead", name="Lee")
    inbox = make.inbox("email", members=[ana, bo])
    online(session, bo)
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact="gail@example.com", text="Refund please"))
    assignment.assign(session, conv, ana, by=lead)  # Ana has no browser open
    session.commit()
    assert smtp.messages == []  # never from the request itself
    assert deliver(app) == 0  # not due yet: she may come back within two minutes
    clock.shift(minutes=2, seconds=5)
    deliver(app)
    [mail] = smtp.messages
    assert mail.rcpt_tos == [ana.email] and mail.mail_from == "alerts@shop.example"
    text = mail.content.decode()
    assert "Subject: [Switchboard] Lee assigned you the conversation with" in text
    assert f"https://inbox.shop.example/#c={conv.id}" in text
    assert "emailed_at" in notes(session, "assigned", ana)[0].data

    # Bo is online: the notification shows in the app, no mail
    assignment.assign(session, conv, bo, by=lead)
    session.commit()
    clock.shift(minutes=3)
    deliver(app)
    assert len(smtp.messages) == 1
    # read before the delay ran out: no mail either
    online(session, bo, until=timedelta(seconds=1))
    clock.shift(minutes=1)
    other = conv_of(session, make.inbound(inbox, contact="hal@example.com"))
    assignment.assign(session, other, bo, by=lead)
    session.commit()
    note = notes(session, "assigned", bo)[-1]
    note.read_at = note.created_at
    session.commit()
    clock.shift(minutes=3)
    deliver(app)
    assert len(smtp.messages) == 1
    session.expire_all()
    skipped = [o.last_error for o in session.query(OutboxItem).filter_by(kind="notify_email")]
    assert sorted(skipped, key=str) == sorted(
        [None, "skipped: online", "skipped: already_read"], key=str
    )


def test_unreachable_smtp_retries_later(app, make, session, clock):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    app.config.update(NOTIFY_SMTP_URL=f"smtp://127.0.0.1:{port}", NOTIFY_EMAIL_DELAY=0)
    ana, lead = make.user(), make.user("lead")
    inbox = make.inbox("email", members=[ana])
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact="ida@example.com"))
    assignment.assign(session, conv, ana, by=lead)
    session.commit()
    deliver(app)
    session.expire_all()
    [row] = session.query(OutboxItem).filter_by(kind="notify_email").all()
    assert row.state == "pending" and row.attempts == 1 and row.last_error
    assert session.query(Notification).filter_by(kind="assigned").count() == 1


def test_email_is_written_in_the_agents_language(app, make, session, clock, smtp):
    ana = make.user(name="Ana", locale="fr")
    lead = make.user("lead", name="Lee")
    inbox = make.inbox("email", members=[ana])
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact="gail@example.com", text="Refund please"))
    assignment.assign(session, conv, ana, by=lead)
    session.commit()
    clock.shift(minutes=2, seconds=5)
    deliver(app)
    [mail] = smtp.messages
    from email import message_from_bytes, policy

    parsed = message_from_bytes(mail.content, policy=policy.default)
    assert parsed["Subject"] == "[Switchboard] Lee vous a attribué une conversation"
    body = parsed.get_content()
    assert f"Conversation n°{conv.id} dans {inbox.name}" in body
    assert "vous n'étiez pas connecté" in body
