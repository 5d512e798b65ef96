"""Mentions in private notes: only teammates who can see the conversation are notified."""

from __future__ import annotations

import socket
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from app.inbox import mentions
from app.models import OutboxItem
from tests.automation.helpers import T0, deliver, notes


def _note(client, make, author, conv_id, body, private=True):
    return client.post(
        f"/api/v1/conversations/{conv_id}/messages",
        json={"body": body, "private": private},
        headers=make.headers(author),
    )


def _setup(make):
    ana = make.user(name="Ana")
    bo = make.user(name="Bo")
    outsider = make.user(name="Cy")  # an agent of another inbox
    lead = make.user("lead", name="Lea")  # sees every inbox
    gone = make.user(name="Dee", active=False)
    inbox = make.inbox("sms", members=[ana, bo, gone])
    make.inbox("sms", members=[outsider])
    conv_id = make.inbound(
        inbox, contact="+14155550100", text="Where is my refund?"
    ).conversation_id
    return ana, bo, outsider, lead, gone, conv_id


def test_mentioned_teammates_who_can_see_the_conversation_are_notified(
    client, make, session, captured_events
):
    ana, bo, outsider, lead, gone, conv_id = _setup(make)
    body = (
        f"@[Bo](user:{bo.id}) can you check the refund? cc @[Lea](user:{lead.id}) "
        f"@[Cy](user:{outsider.id}) @[Dee](user:{gone.id}) @[Ana](user:{ana.id}) "
        f"@[Bo](user:{bo.id}) @[Nobody](user:99999)"
    )
    captured_events.clear()
    resp = _note(client, make, ana, conv_id, body)
    assert resp.status_code == 201
    note = resp.get_json()
    assert note["direction"] == "note" and note["body"] == body
    for user in (bo, lead):
        items = client.get("/api/v1/notifications", headers=make.headers(user)).get_json()["items"]
        items = [n for n in items if n["kind"] != "new_conversation"]  # the inbox was told first
        assert [(n["kind"], n["conversation_id"]) for n in items] == [("mention", conv_id)]
        data = items[0]["data"]
        assert data["message_id"] == note["id"] and data["by"] == "Ana"
        assert data["excerpt"].startswith("@Bo can you check the refund? cc @Lea")
    # who cannot see the conversation, who left, the author and unknown ids: nothing
    for user in (outsider, gone, ana):
        assert [n for n in notes(session, user=user) if n.kind == "mention"] == []
    live = [e for e in captured_events if e.name == "notification.created"]
    assert sorted(e.audience for e in live) == sorted([(("user", bo.id),), (("user", lead.id),)])
    assert all(e.payload["kind"] == "mention" and e.payload["desktop"] is True for e in live)


def test_a_reply_or_a_repeated_note_notifies_nobody_again(client, make, session):
    ana, bo, _outsider, _lead, _gone, conv_id = _setup(make)
    body = f"@[Bo](user:{bo.id}) please look"
    first = client.post(
        f"/api/v1/conversations/{conv_id}/messages",
        json={"body": body, "private": True, "client_id": "n1"},
        headers=make.headers(ana),
    )
    again = client.post(
        f"/api/v1/conversations/{conv_id}/messages",
        json={"body": body, "private": True, "client_id": "n1"},
        headers=make.headers(ana),
    )
    assert first.status_code == 201 and again.status_code == 200
    assert len(notes(session, "mention", bo)) == 1
    # the markup in a reply to the customer is just text: no notification
    assert _note(client, make, ana, conv_id, body, private=False).status_code == 202
    assert len(notes(session, "mention", bo)) == 1


def test_a_mention_switched_off_in_the_app_is_not_shown(client, make, session):
    ana, bo, _outsider, _lead, _gone, conv_id = _setup(make)
    off = {"kinds": {"mention": {"in_app": False, "email": False}}}
    resp = client.patch("/api/v1/me/notification-settings", json=off, headers=make.headers(bo))
    assert resp.status_code == 200
    assert _note(client, make, ana, conv_id, f"@[Bo](user:{bo.id}) hi").status_code == 201
    assert notes(session, "mention", bo) == []


def test_markup_is_parsed_strictly():
    assert mentions.mentioned_ids("@[Bo](user:7) and @[Ana Lima](user:12) @[Bo](user:7)") == [
        7,
        12,
    ]
    assert mentions.mentioned_ids("@Bo, [Bo](user:7), @[Bo](user:x), @[](user:7)") == []
    assert mentions.plain_text("hi @[Ana <b>](user:3)!") == "hi @Ana <b>!"


class _Sink:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp(app):
    """A local SMTP sink for the notification mail."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = _Sink()
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


def test_a_teammate_who_is_not_online_gets_the_mention_by_email(
    app, client, make, session, clock, smtp
):
    clock.to(T0)
    ana, bo, _outsider, _lead, _gone, conv_id = _setup(make)
    resp = _note(client, make, ana, conv_id, f"@[Bo](user:{bo.id}) the customer wants a refund")
    note_id = resp.get_json()["id"]
    assert session.query(OutboxItem).filter_by(kind="notify_email").count() == 1
    clock.shift(minutes=2, seconds=5)
    deliver(app)
    [mail] = smtp.messages
    parsed = message_from_bytes(mail.content, policy=policy.default)
    assert mail.rcpt_tos == [bo.email]
    assert parsed["Subject"].startswith("[Switchboard] Ana mentioned you in a note")
    body = parsed.get_content()
    assert "> @Bo the customer wants a refund" in body
    assert f"https://inbox.shop.example/#c={conv_id}&m={note_id}" in body
