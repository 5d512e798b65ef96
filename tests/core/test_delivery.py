"""Posting replies: rules first, the outbox, the worker, retries and idempotency."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import responses
import sqlalchemy as sa

from app.clock import now
from app.extensions import db
from app.models import Conversation, Inbox, Message, OutboxItem
from app.runtime import worker

GRAPH = "http://graph.fake/v25.0/me/messages"
PROFILE = "http://graph.fake/v25.0/psid-9"


@pytest.fixture
def graph():
    """New contacts' profiles are looked up by the worker; answer them."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(PROFILE, json={"name": "Jane Doe", "first_name": "Jane"})
        yield rsps


def sends(rsps):
    """Send API calls that carry a message (not sender actions such as mark_seen)."""
    return [
        c
        for c in rsps.calls
        if c.request.method == "POST" and "message" in json.loads(c.request.body or "{}")
    ]


def _setup(make, at=None, **settings):
    agent = make.user()
    inbox = make.inbox("messenger", members=[agent], settings=settings or None)
    msg = make.inbound(inbox, contact="psid-9", at=at or now())
    return agent, inbox, db.session.get(Conversation, msg.conversation_id)


def _post(client, make, agent, conv, **body):
    return client.post(
        f"/api/v1/conversations/{conv.id}/messages",
        json={"body": "Hello!", **body},
        headers=make.headers(agent),
    )


def test_reply_is_queued_then_sent_by_the_worker(client, make, graph):
    agent, inbox, conv = _setup(make)
    graph.post(GRAPH, json={"recipient_id": "psid-9", "message_id": "m_sent_1"})
    resp = _post(client, make, agent, conv)
    assert resp.status_code == 202
    assert resp.get_json()["status"] == "queued"
    assert worker.run_once() >= 1
    sent = json.loads(sends(graph)[-1].request.body)
    assert sent["messaging_type"] == "RESPONSE" and sent["message"]["text"] == "Hello!"
    msg = db.session.get(Message, resp.get_json()["id"])
    assert (msg.status, msg.provider_id) == ("sent", "m_sent_1")


def test_refused_send_never_reaches_the_provider(client, make, graph):
    agent, inbox, conv = _setup(make, at=now() - timedelta(hours=25))
    resp = _post(client, make, agent, conv)
    assert resp.status_code == 409
    err = resp.get_json()["error"]
    assert err["code"] == "window_closed" and "24-hour" in err["message"]
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(OutboxItem).where(OutboxItem.kind == "send")
        )
        == 0
    )
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Message).where(Message.direction == "outbound")
        )
        == 0
    )
    worker.run_once()
    assert len(sends(graph)) == 0


def test_human_agent_tag_only_where_enabled(client, make, graph):
    graph.post(GRAPH, json={"recipient_id": "psid-9", "message_id": "m_h"})
    agent, inbox, conv = _setup(make, at=now() - timedelta(hours=30), human_agent=True)
    assert _post(client, make, agent, conv).status_code == 202
    worker.run_once()
    sent = json.loads(sends(graph)[0].request.body)
    assert sent["messaging_type"] == "MESSAGE_TAG" and sent["tag"] == "HUMAN_AGENT"


def test_notes_are_stored_never_sent(client, make, graph):
    agent, inbox, conv = _setup(make, at=now() - timedelta(days=30))
    resp = _post(client, make, agent, conv, private=True, body="Customer is a VIP")
    assert resp.status_code == 201
    assert resp.get_json()["direction"] == "note"
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(OutboxItem).where(OutboxItem.kind == "send")
        )
        == 0
    )


def test_same_client_id_creates_one_message(client, make, graph):
    graph.post(GRAPH, json={"recipient_id": "psid-9", "message_id": "m_once"})
    agent, inbox, conv = _setup(make)
    first = _post(client, make, agent, conv, client_id="draft-42")
    second = _post(client, make, agent, conv, client_id="draft-42")
    assert first.status_code == 202 and second.status_code == 200
    assert first.get_json()["id"] == second.get_json()["id"]
    worker.run_once()
    assert len(sends(graph)) == 1


def test_transient_errors_retry_with_backoff_then_succeed(client, make, graph):
    agent, inbox, conv = _setup(make)
    attempts = []

    def answer(req):
        if "message" not in json.loads(req.body):
            return (200, {}, json.dumps({"recipient_id": "psid-9"}))
        attempts.append(1)
        if len(attempts) == 1:
            return (
                500,
                {},
                json.dumps({"error": {"code": 1200, "message": "Temporary send message failure"}}),
            )
        return (200, {}, json.dumps({"recipient_id": "psid-9", "message_id": "m_retry"}))

    graph.add_callback(responses.POST, GRAPH, callback=answer)
    msg_id = _post(client, make, agent, conv).get_json()["id"]
    worker.run_once()
    item = db.session.scalars(sa.select(OutboxItem).where(OutboxItem.kind == "send")).one()
    assert item.state == "pending" and item.attempts == 1
    assert item.next_attempt_at > now()
    assert db.session.get(Message, msg_id).status == "queued"
    worker.run_once()  # not due yet
    assert len(sends(graph)) == 1
    db.session.execute(sa.update(OutboxItem).values(next_attempt_at=now() - timedelta(seconds=1)))
    db.session.commit()
    worker.run_once()
    assert db.session.get(Message, msg_id).status == "sent"
    assert len(sends(graph)) == 2


def test_window_closed_by_platform_marks_message_failed(client, make, graph):
    agent, inbox, conv = _setup(make)
    graph.post(
        GRAPH,
        status=400,
        json={
            "error": {
                "code": 10,
                "error_subcode": 2018278,
                "message": "This message is sent outside of allowed window.",
            }
        },
    )
    msg_id = _post(client, make, agent, conv).get_json()["id"]
    worker.run_once()
    msg = db.session.get(Message, msg_id)
    assert msg.status == "failed" and msg.error_code == "window_closed"
    assert "outside of allowed window" in msg.error_message


def test_concurrent_workers_never_send_a_row_twice(app, client, make, graph):
    agent, inbox, conv = _setup(make)
    counter = iter(range(1000))
    graph.add_callback(
        responses.POST,
        GRAPH,
        callback=lambda req: (
            200,
            {},
            json.dumps({"recipient_id": "psid-9", "message_id": f"m{next(counter)}"}),
        ),
    )
    for i in range(20):
        assert _post(client, make, agent, conv, body=f"reply {i}").status_code == 202
    db.session.remove()

    def run():
        with app.app_context():
            while worker.run_once(limit=3):
                pass

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    bodies = [json.loads(c.request.body)["message"]["text"] for c in sends(graph)]
    assert sorted(bodies) == sorted(f"reply {i}" for i in range(20))
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Message).where(Message.status == "sent")
        )
        == 20
    )


def test_auth_failure_pauses_sending_until_reconnect(client, make, graph):
    agent, inbox, conv = _setup(make)
    graph.post(
        GRAPH, status=400, json={"error": {"code": 190, "message": "Invalid OAuth access token."}}
    )
    inbox_id = inbox.id
    msg_id = _post(client, make, agent, conv).get_json()["id"]
    worker.run_once()
    inbox = db.session.get(Inbox, inbox_id)
    assert inbox.needs_reconnect is True and "Reconnect" in inbox.last_error
    assert db.session.get(Message, msg_id).status == "queued"
