"""Snooze, pending auto-close, inactive and declined: states that change on their own or back."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.clock import aware
from app.inbox import conversations
from app.models import Message
from tests.automation.helpers import T0, conv_of, fresh_conv, run


def _ids(client, headers, **args) -> list[int]:
    resp = client.get("/api/v1/conversations", query_string=args, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return [c["id"] for c in resp.get_json()["items"]]


def _lines(session, conv_id: int, event: str) -> list[str]:
    session.expire_all()
    return [
        m.body
        for m in session.scalars(
            sa.select(Message)
            .where(Message.conversation_id == conv_id, Message.direction == "activity")
            .order_by(Message.id)
        )
        if (m.meta or {}).get("event") == event
    ]


def test_snooze_wakes_at_its_time_once(app, make, session, clock, captured_events):
    agent = make.user()
    inbox = make.inbox("email", members=[agent])
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact="f@example.com"))
    conversations.set_status(session, conv, "snoozed", agent, T0 + timedelta(hours=2))
    session.commit()
    clock.to(T0 + timedelta(hours=1, minutes=59, seconds=50))
    assert run(app, "wake_snoozed")
    assert fresh_conv(session, conv.id).status == "snoozed"
    clock.to(T0 + timedelta(hours=2, seconds=10))
    captured_events.clear()
    assert run(app, "wake_snoozed")
    assert fresh_conv(session, conv.id).status == "open"
    assert [e.payload["status"] for e in captured_events if e.name == "conversation.updated"] == [
        "open"
    ]
    clock.shift(minutes=1)
    assert run(app, "wake_snoozed")
    assert _lines(session, conv.id, "woken") == ["Snooze ended: back to open"]


def test_snooze_ends_early_when_the_customer_writes(app, make, session, clock):
    agent = make.user()
    inbox = make.inbox("messenger", members=[agent])
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact="7700"))
    conversations.set_status(session, conv, "snoozed", agent, T0 + timedelta(days=2))
    session.commit()
    clock.shift(hours=3)
    make.inbound(inbox, contact="7700", text="any news?")
    fresh = fresh_conv(session, conv.id)
    assert fresh.status == "open" and fresh.snooze_until is None


def test_pending_auto_close_is_off_by_default_then_closes_after_the_days(
    app, make, session, clock, client
):
    lead = make.user("lead")
    agent = make.user()
    inbox = make.inbox("email", members=[agent])
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact="g@example.com"))
    conversations.set_status(session, conv, "pending", agent)
    session.commit()
    clock.to(T0 + timedelta(days=90))
    assert run(app, "auto_close_pending")
    assert fresh_conv(session, conv.id).status == "pending"  # off by default

    resp = client.patch(
        f"/api/v1/inboxes/{inbox.id}",
        headers=make.headers(lead),
        json={"auto_close_pending_days": 3},
    )
    assert resp.status_code == 200 and resp.get_json()["settings"]["auto_close_pending_days"] == 3
    clock.to(T0 + timedelta(days=100))
    other = conv_of(session, make.inbound(inbox, contact="h@example.com"))
    conversations.set_status(session, other, "pending", agent)
    session.commit()
    assert run(app, "auto_close_pending")  # the old one closes at once (90+ days pending)
    assert fresh_conv(session, conv.id).status == "closed"
    clock.to(T0 + timedelta(days=103, minutes=-3))
    assert run(app, "auto_close_pending")
    assert fresh_conv(session, other.id).status == "pending"
    clock.to(T0 + timedelta(days=103, minutes=3))
    assert run(app, "auto_close_pending")
    assert fresh_conv(session, other.id).status == "closed"
    assert _lines(session, other.id, "closed") == [
        "Closed automatically: pending for 3 days with no activity"
    ]


def test_inactive_after_fifteen_days_then_active_when_the_customer_writes(
    app, make, session, clock, client
):
    agent = make.user()
    inbox = make.inbox("sms", members=[agent])
    headers = make.headers(agent)
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact="+33612345678", text="Un devis ?"))
    closed = conv_of(session, make.inbound(inbox, contact="+33612345679", text="Merci"))
    conversations.set_status(session, closed, "closed", agent)
    session.commit()
    activity = aware(fresh_conv(session, conv.id).last_activity_at)

    clock.to(T0 + timedelta(days=15, minutes=-5))
    assert run(app, "mark_inactive")
    assert _ids(client, headers, status="inactive") == []
    clock.to(T0 + timedelta(days=15, minutes=5))
    assert run(app, "mark_inactive")
    assert _ids(client, headers, status="inactive") == [conv.id]
    fresh = fresh_conv(session, conv.id)
    assert aware(fresh.inactive_since) == activity + timedelta(days=15)
    body = client.get(f"/api/v1/conversations/{conv.id}", headers=headers).get_json()
    assert body["inactive_since"] is not None and body["status"] == "open"
    assert fresh_conv(session, closed.id).inactive_since is None  # closed ones are not leads
    clock.shift(minutes=10)
    assert run(app, "mark_inactive")
    assert len(_lines(session, conv.id, "inactive")) == 1

    clock.shift(days=2)
    make.inbound(inbox, contact="+33612345678", text="Toujours intéressé")
    assert _ids(client, headers, status="inactive") == []
    assert fresh_conv(session, conv.id).inactive_since is None


def test_decline_with_a_reason_and_reactivate(app, make, session, clock, client, captured_events):
    agent = make.user(name="Ana")
    inbox = make.inbox("messenger", members=[agent])
    headers = make.headers(agent)
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact="7800", text="Do you deliver to Mars?"))
    url = f"/api/v1/conversations/{conv.id}"

    assert client.post(url + "/decline", json={}, headers=headers).status_code == 422
    resp = client.post(
        url + "/decline", json={"reason": "Outside our service area"}, headers=headers
    )
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "closed"
    assert body["declined"]["reason"] == "Outside our service area"
    assert _ids(client, headers, status="declined") == [conv.id]
    assert _ids(client, headers, status="open") == []
    assert _lines(session, conv.id, "closed") == ["Ana declined this: Outside our service area"]

    resp = client.post(url + "/undecline", headers=headers)
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "open" and resp.get_json()["declined"] is None
    assert _ids(client, headers, status="declined") == []
    assert client.post(url + "/undecline", headers=headers).status_code == 409

    # declined again; the customer writes within the reopen period: reopened, no longer declined
    client.post(url + "/decline", json={"reason": "Spam"}, headers=headers)
    clock.shift(hours=2)
    make.inbound(inbox, contact="7800", text="Sorry, I meant Marseille!")
    fresh = fresh_conv(session, conv.id)
    assert fresh.status == "open" and fresh.declined_at is None
    assert _ids(client, headers, status="declined") == []
