"""Failing inboxes never fail silently: incidents, admins told once, held replies, banners' data.

A mailbox whose SMTP server refuses the login (a local ``aiosmtpd`` answering 535), one
whose IMAP server refuses it (the private Dovecot), one whose sends keep failing (451),
and a busy inbox that suddenly receives nothing. Each opens one incident on the inbox
(``incident`` in the inbox object), the admins get one ``inbox_failing`` notification per
incident, and recovery closes it. A reply held by a paused inbox says so and the
conversation keeps waiting for an answer (its response target stays).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import sqlalchemy as sa
import time_machine
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from app.clock import now
from app.extensions import db
from app.inbox import credentials
from app.models import Inbox, Message, Notification, OutboxItem, User
from app.runtime.jobs import mail as mail_job
from app.runtime.jobs import silence
from app.runtime.notify_mail import email_text
from tests.channels.harness import Api, SmtpSink, run_worker
from tests.connectors.imap_server import dovecot as dovecot  # noqa: F401  (pytest fixture)
from tests.connectors.imap_server import free_port

OURS = "support@shop.example"
WAITING = "Waiting: the inbox needs reconnecting"
_ids = itertools.count(1)


class Server(SmtpSink):
    """An SMTP server with a login: accepts ``password`` only (None: refuses every login)."""

    def __init__(self) -> None:
        super().__init__()
        self.password: bytes | None = None
        self.logins = 0

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins += 1
        ok = self.password is not None and auth_data.password == self.password
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp():
    """A local SMTP server that needs a login; yields ``(server, port)``."""
    server, port = Server(), free_port()
    controller = Controller(
        server,
        hostname="127.0.0.1",
        port=port,
        authenticator=server.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield server, port
    controller.stop()


@dataclass(frozen=True)
class Person:
    """Plain values of a user (the worker detaches ORM objects)."""

    id: int
    headers: dict


@pytest.fixture
def people(make):
    admin = make.user("admin", name="Ada Admin")
    agent = make.user("agent", name="Ana Agent")
    return Person(admin.id, make.headers(admin)), Person(agent.id, make.headers(agent))


def raw_mail(body: str = "Where is my order 1042?", frm: str = "anna@example.com") -> bytes:
    lines = [
        f"From: Anna <{frm}>",
        f"To: {OURS}",
        "Subject: Order late",
        f"Date: {format_datetime(datetime.now(UTC) - timedelta(minutes=5))}",
        f"Message-ID: <h{next(_ids)}@mail.example.com>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def customer_writes(client, inbox_token: str, **kw) -> None:
    resp = client.post(
        f"/webhooks/email/inbound/{inbox_token}", data=raw_mail(**kw), content_type="message/rfc822"
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)


def mailbox(make, agent, port: int, **config) -> tuple[int, str]:
    box = make.inbox(
        "email",
        members=[db.session.get(User, agent.id)],
        address=OURS,
        smtp_port=port,
        smtp_user="support",
        smtp_password="old-app-password",
        **config,
    )
    return box.id, box.inbound_token


def notes(user, kind: str = "inbox_failing") -> list[Notification]:
    return list(
        db.session.scalars(
            sa.select(Notification)
            .where(Notification.user_id == user.id, Notification.kind == kind)
            .order_by(Notification.id)
        )
    )


def reconnect(inbox_id: int, **changes) -> None:
    inbox = db.session.get(Inbox, inbox_id)
    credentials.reconnect(db.session, inbox, changes)
    db.session.commit()


# --------------------------------------------------------------------------- SMTP login refused


def test_refused_smtp_login_pauses_says_waiting_keeps_the_due_chip_logs_and_tells_admins(
    client, make, people, smtp, caplog
):
    admin, agent = people
    server, port = smtp
    inbox_id, token = mailbox(make, agent, port)
    api, admin_api = Api(client, agent.headers), Api(client, admin.headers)
    customer_writes(client, token)
    conv = api.only_conversation()
    assert conv["response_due"]["due_at"] is not None

    queued = api.reply(conv["id"], "It left our warehouse today.")
    with caplog.at_level(logging.WARNING):
        run_worker()

    # the reply did not go out, and says why
    msg = api.message(conv["id"], queued["id"])
    assert msg["status"] == "queued"
    assert msg["status_reason"] == {"code": "inbox_needs_reconnect", "text": WAITING}
    assert server.received == [] and server.logins  # it tried to log in, once per mechanism
    tries = server.logins
    # the customer is not answered: the conversation still waits, its due chip stays
    conv = api.conversation(conv["id"])
    assert conv["waiting_since"] is not None
    assert conv["response_due"]["due_at"] is not None
    # the inbox is paused with the server's own words, and failing
    inbox = api.get("/inboxes")["items"][0]
    assert inbox["needs_reconnect"] is True
    assert "Authentication" in inbox["last_error"] or "535" in inbox["last_error"]
    assert inbox["incident"]["reason"] == "auth_refused"
    assert inbox["incident"]["since"] is not None
    # logged, with the inbox id and the reason
    assert any(
        r.levelno == logging.WARNING
        and f"inbox {inbox_id}" in r.getMessage()
        and "auth_refused" in r.getMessage()
        for r in caplog.records
    )
    # the admins are told (bell, desktop, mail when offline); the agent is not bothered
    (told,) = notes(admin)
    assert told.conversation_id is None
    assert told.data["url"] == f"/admin/inboxes/{inbox_id}#reconnect"
    assert told.data["inbox_id"] == inbox_id
    assert notes(agent) == []
    listed = admin_api.get("/notifications")["items"]
    assert [n["kind"] for n in listed] == ["inbox_failing"]

    # paused: hours later it still waits, nobody is told again, the server is left alone
    with time_machine.travel(now() + timedelta(hours=3), tick=True):
        run_worker()
    assert server.logins == tries
    assert len(notes(admin)) == 1
    assert api.message(conv["id"], queued["id"])["status_reason"]["text"] == WAITING

    # the admin pastes the new app password: the reply goes out and answers the customer
    server.password = b"new-app-password"
    reconnect(inbox_id, smtp_password="new-app-password")
    run_worker()
    msg = api.message(conv["id"], queued["id"])
    assert msg["status"] == "sent" and msg["status_reason"] is None
    assert server.texts() == ["It left our warehouse today."]
    conv = api.conversation(conv["id"])
    assert conv["waiting_since"] is None and conv["response_due"]["due_at"] is None
    inbox = api.get("/inboxes")["items"][0]
    assert inbox["incident"] is None and inbox["needs_reconnect"] is False
    assert [n.kind for n in notes(admin, "inbox_recovered")] == ["inbox_recovered"]


def test_a_reply_written_while_the_inbox_is_paused_waits_from_the_start(client, make, people, smtp):
    _, agent = people
    _, port = smtp
    inbox_id, token = mailbox(make, agent, port)
    api = Api(client, agent.headers)
    customer_writes(client, token)
    conv = api.only_conversation()
    api.reply(conv["id"], "First try.")
    run_worker()
    queued = api.reply(conv["id"], "Second try.")
    assert queued["status_reason"] == {"code": "inbox_needs_reconnect", "text": WAITING}
    assert api.conversation(conv["id"])["response_due"]["due_at"] is not None


def test_two_refused_sends_one_notification_recovery_then_a_new_incident(
    client, make, people, smtp
):
    admin, agent = people
    server, port = smtp
    inbox_id, token = mailbox(make, agent, port)
    api = Api(client, agent.headers)
    customer_writes(client, token, frm="anna@example.com")
    customer_writes(client, token, frm="ben@example.com")
    first, second = api.conversations()
    api.reply(first["id"], "One.")
    api.reply(second["id"], "Two.")
    run_worker()
    assert len(notes(admin)) == 1  # two refused sends, one incident

    server.password = b"fresh"
    reconnect(inbox_id, smtp_password="fresh")
    run_worker()
    assert sorted(server.texts()) == ["One.", "Two."]
    assert len(notes(admin, "inbox_recovered")) == 1

    server.password = None  # the password is revoked again
    api.reply(first["id"], "Three.")
    run_worker()
    assert len(notes(admin)) == 2  # a new incident, a new notification
    assert api.get("/inboxes")["items"][0]["incident"]["reason"] == "auth_refused"


# --------------------------------------------------------------------------- sends keep failing


def test_sends_failing_again_and_again_are_one_incident_closed_by_the_next_success(
    client, make, people, smtp_sink
):
    admin, agent = people
    sink, port = smtp_sink
    box = make.inbox(
        "email", members=[db.session.get(User, agent.id)], address=OURS, smtp_port=port
    )
    token = box.inbound_token
    api = Api(client, agent.headers)
    customer_writes(client, token)
    conv = api.only_conversation()
    sink.reply = "451 4.3.0 Mail server temporarily rejected message."
    api.reply(conv["id"], "Retried reply.")
    at = now()
    for hour in range(1, 4):  # three attempts, each after its back-off
        with time_machine.travel(at + timedelta(hours=hour * 2), tick=True):
            run_worker()
    assert len(notes(admin)) == 1
    incident = api.get("/inboxes")["items"][0]["incident"]
    assert incident["reason"] == "sending_failing" and "451" not in (incident["message"] or "x")
    sink.reply = None
    with time_machine.travel(at + timedelta(hours=10), tick=True):
        run_worker()
    assert sink.texts() == ["Retried reply."]
    assert api.get("/inboxes")["items"][0]["incident"] is None
    assert len(notes(admin)) == 1 and len(notes(admin, "inbox_recovered")) == 1


# --------------------------------------------------------------------------- IMAP login refused


def test_refused_imap_login_is_one_incident_until_a_poll_succeeds(
    app, make, people, dovecot, client
):
    admin, agent = people
    config = {**dovecot.config, "imap_password": "revoked"}
    box = make.inbox("email", members=[db.session.get(User, agent.id)], **config)
    inbox_id = box.id
    mail_job.poll_inbox(inbox_id, force=True)
    mail_job.poll_inbox(inbox_id, force=True)
    assert len(notes(admin)) == 1
    inbox = Api(client, admin.headers).get("/inboxes")["items"][0]
    assert inbox["incident"]["reason"] == "login_refused"
    assert "refused the login" in inbox["incident"]["message"]
    assert inbox["needs_reconnect"] is False  # sending is another server: not paused

    inbox = db.session.get(Inbox, inbox_id)
    inbox.config = {**inbox.config, "imap_password": dovecot.password}
    db.session.commit()
    assert mail_job.poll_inbox(inbox_id, force=True).error is None
    assert db.session.get(Inbox, inbox_id).state.get("incident") is None
    assert len(notes(admin, "inbox_recovered")) == 1


# --------------------------------------------------------------------------- silence


def _traffic(inbox_id: int, conv_id: int, n: int, at: datetime) -> None:
    for i in range(n):
        db.session.add(
            Message(
                conversation_id=conv_id,
                inbox_id=inbox_id,
                direction="inbound",
                body=f"message {i}",
                status="received",
                created_at=at - timedelta(days=6) + timedelta(minutes=i),
            )
        )
    db.session.commit()


@pytest.mark.parametrize("per_week, alerted", [(40, True), (10, False)])
def test_silence_on_a_busy_inbox_is_an_incident_but_not_on_a_quiet_one(
    make, people, per_week, alerted
):
    admin, agent = people
    box = make.inbox("sms", members=[db.session.get(User, agent.id)])
    first = make.inbound(box, text="hello")
    inbox_id, conv_id = box.id, first.conversation_id
    at = now()
    _traffic(inbox_id, conv_id, per_week - 1, at)
    inbox = db.session.get(Inbox, inbox_id)
    inbox.last_event_at = at - timedelta(hours=30)  # nothing for 30 h
    db.session.commit()

    assert silence.watch_silence()["silent"] == (1 if alerted else 0)
    silence.watch_silence()
    assert len(notes(admin)) == (1 if alerted else 0)
    if not alerted:
        return
    assert db.session.get(Inbox, inbox_id).state["incident"]["reason"] == "silent"
    make.inbound(db.session.get(Inbox, inbox_id), text="we are back")  # an event arrives
    assert silence.watch_silence()["recovered"] == 1
    assert db.session.get(Inbox, inbox_id).state.get("incident") is None


def test_silence_alert_off_for_an_inbox(make, people, client):
    admin, agent = people
    box = make.inbox("sms", members=[db.session.get(User, agent.id)])
    first = make.inbound(box, text="hello")
    inbox_id = box.id
    _traffic(inbox_id, first.conversation_id, 60, now())
    resp = Api(client, admin.headers).client.patch(
        f"/api/v1/inboxes/{inbox_id}",
        json={"silence_alert_hours": 0},
        headers=admin.headers,
    )
    assert resp.status_code == 200, resp.get_json()
    inbox = db.session.get(Inbox, inbox_id)
    inbox.last_event_at = now() - timedelta(days=3)
    db.session.commit()
    assert silence.watch_silence()["silent"] == 0
    assert notes(admin) == []


# --------------------------------------------------------------------------- mail when offline


def test_an_offline_admin_gets_the_incident_by_mail(app, client, make, people, smtp):
    admin, agent = people
    app.config["NOTIFY_SMTP_URL"] = "smtp://127.0.0.1:1"
    _, port = smtp
    inbox_id, token = mailbox(make, agent, port)
    api = Api(client, agent.headers)
    customer_writes(client, token)
    api.reply(api.only_conversation()["id"], "Hello.")
    run_worker()
    (told,) = notes(admin)
    queued = db.session.scalars(sa.select(OutboxItem).where(OutboxItem.kind == "notify_email"))
    assert [q.payload["notification_id"] for q in queued] == [told.id]
    app.config["PUBLIC_URL"] = "https://desk.example"
    subject, body = email_text(told, None, "en")
    assert "stopped working" in subject
    assert f"https://desk.example/admin/inboxes/{inbox_id}#reconnect" in body
