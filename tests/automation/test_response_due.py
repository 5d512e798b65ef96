"""The response target: a warning before it, a breach notice and a breach record after it."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.clock import aware
from app.inbox import assignment
from app.models import ResponseBreach
from app.runtime.jobs import timers
from tests.automation.helpers import T0, conv_of, notes, online, reply, run


def _breaches(session):
    session.expire_all()
    return list(session.scalars(sa.select(ResponseBreach).order_by(ResponseBreach.id)))


def test_warning_then_breach_once_each_then_answered(app, make, session, clock, client):
    agent = make.user(name="Ana")
    lead_member = make.user("lead", name="Lee")
    lead_elsewhere = make.user("lead", name="Lou")
    inbox = make.inbox("email", members=[agent, lead_member], settings={"response_due_hours": 4})
    online(session, agent)
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact="dana@example.com", text="Hello?"))
    assignment.assign(session, conv, agent)
    session.commit()

    clock.to(T0 + timedelta(hours=2, minutes=59))
    assert run(app, "watch_response_due")
    assert notes(session, "response_due_soon") == []

    clock.to(T0 + timedelta(hours=3, minutes=1))
    assert run(app, "watch_response_due")
    soon = notes(session, "response_due_soon")
    assert [n.user_id for n in soon] == [agent.id]
    assert "answer within 59 min" in soon[0].data["text"]

    clock.to(T0 + timedelta(hours=3, minutes=59, seconds=50))
    assert run(app, "watch_response_due")
    assert _breaches(session) == [] and len(notes(session, "response_due_soon")) == 1

    clock.to(T0 + timedelta(hours=4, seconds=20))
    assert run(app, "watch_response_due")
    breaches = _breaches(session)
    assert [(b.conversation_id, b.assignee_id, aware(b.due_at)) for b in breaches] == [
        (conv.id, agent.id, T0 + timedelta(hours=4))
    ]
    overdue = notes(session, "response_overdue")
    assert sorted(n.user_id for n in overdue) == sorted([agent.id, lead_member.id])
    assert lead_elsewhere.id not in [n.user_id for n in overdue]  # a member lead exists

    for _ in range(3):  # later runs: no second breach, no second notice
        clock.shift(minutes=1)
        assert run(app, "watch_response_due")
    assert len(_breaches(session)) == 1 and len(notes(session, "response_overdue")) == 2

    clock.shift(minutes=30)
    reply(session, conv, agent)
    [breach] = _breaches(session)
    assert aware(breach.answered_at) == T0 + timedelta(hours=4, minutes=33, seconds=20)

    # the API shows it as answered: nothing waits, no due time
    body = client.get(f"/api/v1/conversations/{conv.id}", headers=make.headers(agent)).get_json()
    assert body["response_due"] == {"due_at": None, "seconds_left": 0, "breached": False}


def test_breach_goes_to_every_lead_when_no_lead_is_a_member(app, make, session, clock):
    agent = make.user()
    lead, admin = make.user("lead"), make.user("admin")
    inbox = make.inbox("email", members=[agent], settings={"response_due_hours": 1})
    clock.to(T0)
    make.inbound(inbox, contact="c@example.com", text="Where is my parcel?")
    clock.to(T0 + timedelta(hours=1, minutes=1))
    got = timers.watch_response_due()
    assert got["breached"] == 1
    overdue = notes(session, "response_overdue")
    assert sorted(n.user_id for n in overdue) == sorted([lead.id, admin.id])  # unassigned


def test_breaches_during_downtime_are_recorded_by_the_next_run(app, make, session, clock):
    agent = make.user()
    inbox = make.inbox(
        "sms", members=[agent], settings={"response_due_hours": 1, "response_warning_minutes": 0}
    )
    clock.to(T0)
    make.inbound(inbox, contact="+14155550102")
    assert run(app, "watch_response_due")
    clock.to(T0 + timedelta(hours=6))  # the scheduler was down for six hours
    assert run(app, "watch_response_due")
    assert len(_breaches(session)) == 1
    assert notes(session, "response_due_soon") == []  # warnings switched off (0)


def test_warning_can_be_set_per_inbox(app, make, session, clock, client):
    lead = make.user("lead")
    agent = make.user()
    inbox = make.inbox("sms", members=[agent])
    resp = client.patch(
        f"/api/v1/inboxes/{inbox.id}",
        headers=make.headers(lead),
        json={"response_warning_minutes": 15, "response_due_hours": 2},
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["settings"]["response_warning_minutes"] == 15
    clock.to(T0)
    make.inbound(inbox, contact="+14155550103")
    clock.to(T0 + timedelta(hours=1, minutes=44))
    timers.watch_response_due()
    assert notes(session, "response_due_soon") == []
    clock.to(T0 + timedelta(hours=1, minutes=46))
    timers.watch_response_due()
    assert len(notes(session, "response_due_soon")) == 1
    bad = client.patch(
        f"/api/v1/inboxes/{inbox.id}",
        headers=make.headers(lead),
        json={"response_warning_minutes": -5},
    )
    assert bad.status_code == 422


def test_a_team_without_leads_hears_of_an_unassigned_breach(app, make, session, clock):
    agent = make.user()
    inbox = make.inbox("email", members=[agent], settings={"response_due_hours": 1})
    clock.to(T0)
    make.inbound(inbox, contact="j@example.com")
    clock.to(T0 + timedelta(hours=1, minutes=1))
    timers.watch_response_due()
    assert [n.user_id for n in notes(session, "response_overdue")] == [agent.id]
