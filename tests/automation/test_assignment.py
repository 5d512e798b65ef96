"""Round robin and least loaded over eligible agents, the unassigned queue, and its draining."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import sqlalchemy as sa

from app.extensions import socketio
from app.inbox import assignment, conversations
from app.models import Conversation, Message
from tests.automation.helpers import T0, fresh_conv, notes, online, run


def _assignees(session, inbox_id: int) -> Counter:
    session.expire_all()
    rows = session.scalars(
        sa.select(Conversation.assignee_id).where(Conversation.inbox_id == inbox_id)
    )
    return Counter(rows)


def _load(session, make, user, n: int) -> None:
    """Give ``user`` n open conversations in an unrelated manual inbox."""
    other = make.inbox("email", members=[user])
    for i in range(n):
        conv = fresh_conv(
            session, make.inbound(other, contact=f"load-{user.id}-{i}@example.com").conversation_id
        )
        assignment.assign(session, conv, user)
    session.commit()


def test_round_robin_spreads_100_conversations_evenly_over_eligible_agents(
    app, make, session, clock, captured_events
):
    clock.to(T0)  # the clock stands still: the rotation must not depend on it ticking
    ana, bo, cy = (make.user(name=n, capacity=50) for n in ("Ana", "Bo", "Cy"))
    away = make.user(name="Dee (away)", capacity=50)
    full = make.user(name="Eve (full)", capacity=2)
    ghost = make.user(name="Fay (no browser open)", capacity=50)
    online(session, ana, bo, cy, away, full)
    away.availability = "away"
    session.commit()
    _load(session, make, full, 2)
    inbox = make.inbox(
        "messenger",
        members=[ana, bo, cy, away, full, ghost],
        settings={"assignment": "round_robin"},
    )
    captured_events.clear()
    for i in range(100):
        make.inbound(inbox, contact=f"81{i:03d}", text=f"question {i}")
    spread = _assignees(session, inbox.id)
    assert None not in spread
    assert set(spread) == {ana.id, bo.id, cy.id}
    assert max(spread.values()) - min(spread.values()) <= 1
    assert sum(spread.values()) == 100
    # strict rotation in arrival order
    order = list(
        session.scalars(
            sa.select(Conversation.assignee_id)
            .where(Conversation.inbox_id == inbox.id)
            .order_by(Conversation.id)
        )
    )
    assert order[:6] == [ana.id, bo.id, cy.id, ana.id, bo.id, cy.id]
    # each assignment: an activity line, a notification for the assignee and a live event
    lines = session.scalar(
        sa.select(sa.func.count())
        .select_from(Message)
        .where(
            Message.inbox_id == inbox.id,
            Message.direction == "activity",
            Message.body.like("Automatic assignment assigned this to %"),
        )
    )
    assert lines == 100
    assert len(notes(session, "assigned", ana)) == spread[ana.id]
    pushed = Counter(e.audience[0][1] for e in captured_events if e.name == "notification.created")
    assert pushed == Counter({ana.id: spread[ana.id], bo.id: spread[bo.id], cy.id: spread[cy.id]})


def test_round_robin_respects_capacity(app, make, session, clock):
    clock.to(T0)
    ana, bo = make.user(name="Ana", capacity=3), make.user(name="Bo", capacity=5)
    online(session, ana, bo)
    inbox = make.inbox("messenger", members=[ana, bo], settings={"assignment": "round_robin"})
    for i in range(10):
        make.inbound(inbox, contact=f"82{i:03d}")
    assert _assignees(session, inbox.id) == Counter({ana.id: 3, bo.id: 5, None: 2})


def test_least_loaded_picks_the_fewest_open_then_the_least_recent(app, make, session, clock):
    clock.to(T0)
    ana, bo, cy = (make.user(name=n) for n in ("Ana", "Bo", "Cy"))
    online(session, ana, bo, cy)
    _load(session, make, ana, 3)
    _load(session, make, bo, 1)
    inbox = make.inbox("messenger", members=[ana, bo, cy], settings={"assignment": "least_loaded"})
    for i in range(6):
        make.inbound(inbox, contact=f"83{i:03d}")
    # open load before: Ana 3, Bo 1, Cy 0. Cy, then Bo (tie at 1, assigned longer ago),
    # Cy, Bo (tie at 2), Cy; at 3-3-3 Ana has waited longest for a conversation
    order = list(
        session.scalars(
            sa.select(Conversation.assignee_id)
            .where(Conversation.inbox_id == inbox.id)
            .order_by(Conversation.id)
        )
    )
    assert order == [cy.id, bo.id, cy.id, bo.id, cy.id, ana.id]


def test_nobody_eligible_queues_then_drains_oldest_first_when_an_agent_comes_online(
    app, make, session, clock, client
):
    clock.to(T0)
    ana = make.user(name="Ana", capacity=3)
    bo = make.user(name="Bo", capacity=10)
    inbox = make.inbox("messenger", members=[ana, bo], settings={"assignment": "round_robin"})
    ids = []
    for i in range(5):
        clock.to(T0 + timedelta(minutes=i))
        ids.append(make.inbound(inbox, contact=f"84{i:03d}", text=f"waiting {i}").conversation_id)
    assert _assignees(session, inbox.id) == Counter({None: 5})  # nobody online: the queue
    resp = client.get(
        "/api/v1/conversations",
        query_string={"assignee": "unassigned"},
        headers=make.headers(make.user("lead")),
    )
    assert resp.get_json()["counts"]["unassigned"] == 5

    # Ana opens the inbox in her browser: the three oldest are hers at once
    clock.to(T0 + timedelta(minutes=10))
    socket = socketio.test_client(app, auth={"token": make.token(ana)})
    assert socket.is_connected()
    session.expire_all()
    got = {cid: fresh_conv(session, cid).assignee_id for cid in ids}
    assert [cid for cid in ids if got[cid] == ana.id] == ids[:3]
    assert got[ids[3]] is None and got[ids[4]] is None

    # she closes one: the next oldest is hers immediately
    conversations.set_status(session, fresh_conv(session, ids[0]), "closed", ana)
    session.commit()
    assert fresh_conv(session, ids[3]).assignee_id == ana.id
    assert fresh_conv(session, ids[4]).assignee_id is None

    # heartbeats keep her online; when her last socket closes she is not eligible any more
    clock.shift(seconds=80)
    ack = socket.emit("heartbeat", callback=True)
    assert ack["online_until"] == "2026-03-02T09:12:50Z"
    socket.disconnect()
    conversations.set_status(session, fresh_conv(session, ids[1]), "closed", ana)
    session.commit()
    assert fresh_conv(session, ids[4]).assignee_id is None

    # Bo says he is online (and has the app open): the drain job hands him the rest
    online(session, bo)
    clock.shift(minutes=1)
    assert run(app, "drain_queue")
    assert fresh_conv(session, ids[4]).assignee_id == bo.id


def test_presence_expires_without_heartbeats(app, make, session, clock):
    clock.to(T0)
    ana = make.user(name="Ana")
    inbox = make.inbox("messenger", members=[ana], settings={"assignment": "round_robin"})
    socket = socketio.test_client(app, auth={"token": make.token(ana)})
    assert socket.is_connected()
    clock.shift(seconds=60)
    first = make.inbound(inbox, contact="8500").conversation_id
    clock.shift(seconds=60)  # 120 s without a heartbeat: the browser is gone
    second = make.inbound(inbox, contact="8501").conversation_id
    assert fresh_conv(session, first).assignee_id == ana.id
    assert fresh_conv(session, second).assignee_id is None
    socket.disconnect()


def test_going_online_through_the_api_drains_the_queue(app, make, session, clock, client):
    clock.to(T0)
    ana = make.user(name="Ana")
    inbox = make.inbox("messenger", members=[ana], settings={"assignment": "least_loaded"})
    online(session, ana)
    ana.availability = "busy"
    session.commit()
    conv_id = make.inbound(inbox, contact="8600").conversation_id
    assert fresh_conv(session, conv_id).assignee_id is None
    resp = client.patch("/api/v1/me", json={"availability": "online"}, headers=make.headers(ana))
    assert resp.status_code == 200
    assert fresh_conv(session, conv_id).assignee_id == ana.id


def test_away_agent_conversations_return_to_the_queue_on_the_next_customer_reply(
    app, make, session, clock, client
):
    clock.to(T0)
    ana, bo = make.user(name="Ana"), make.user(name="Bo")
    online(session, ana, bo)
    inbox = make.inbox(
        "messenger",
        members=[ana, bo],
        settings={"assignment": "round_robin", "return_to_queue_when_away": True},
    )
    conv_id = make.inbound(inbox, contact="8700").conversation_id
    assert fresh_conv(session, conv_id).assignee_id == ana.id
    keep = make.inbox("messenger", members=[ana], settings={"assignment": "manual"})
    kept_id = make.inbound(keep, contact="8701").conversation_id
    assignment.assign(session, fresh_conv(session, kept_id), ana)
    session.commit()

    client.patch("/api/v1/me", json={"availability": "away"}, headers=make.headers(ana))
    clock.shift(minutes=5)
    make.inbound(inbox, contact="8700", text="Hello? Anyone?")
    make.inbound(keep, contact="8701", text="Still there?")
    assert fresh_conv(session, conv_id).assignee_id == bo.id
    assert fresh_conv(session, kept_id).assignee_id == ana.id  # option off in that inbox
    [back] = notes(session, "returned_to_queue")
    assert back.user_id == ana.id and back.conversation_id == conv_id
    bodies = [
        m.body
        for m in session.scalars(
            sa.select(Message)
            .where(Message.conversation_id == conv_id, Message.direction == "activity")
            .order_by(Message.id)
        )
    ]
    assert "Back to the queue: Ana is away and the customer wrote" in bodies


def test_bulk_auto_assignment_distributes_by_each_inbox_mode(app, make, session, clock, client):
    clock.to(T0)
    lead = make.user("lead", name="Lee")
    ana, bo, cy = (make.user(name=n) for n in ("Ana", "Bo", "Cy"))
    online(session, ana, bo)
    manual = make.inbox("messenger", members=[ana, bo])
    nobody = make.inbox("messenger", members=[cy])  # Cy is offline
    ids = [make.inbound(manual, contact=f"88{i:03d}").conversation_id for i in range(6)]
    lone = make.inbound(nobody, contact="88999").conversation_id
    resp = client.post(
        "/api/v1/conversations/bulk",
        headers=make.headers(lead),
        json={"ids": [*ids, lone], "action": "assign", "assignee_id": "auto"},
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["unassigned_ids"] == [lone]
    assert Counter(
        c["assignee"]["id"] for c in resp.get_json()["items"] if c["assignee"]
    ) == Counter({ana.id: 3, bo.id: 3})
    agent_try = client.post(
        "/api/v1/conversations/bulk",
        headers=make.headers(ana),
        json={"ids": ids, "action": "assign", "assignee_id": "auto"},
    )
    assert agent_try.status_code == 403
