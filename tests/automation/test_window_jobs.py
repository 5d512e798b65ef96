"""Reply-window warnings and the window closing, on a moving clock."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.inbox import assignment
from app.models import Message
from app.runtime.jobs import timers
from tests.automation.helpers import T0, conv_of, notes, online, reply, run


def _timeline_inbox(make, session, **settings):
    agent, other = make.user(name="Ana"), make.user(name="Bo")
    inbox = make.inbox("messenger", members=[agent, other], settings=settings)
    return agent, other, inbox


def test_warnings_fire_once_at_each_threshold_then_the_window_closes_live(
    app, make, session, clock, captured_events
):
    agent, other, inbox = _timeline_inbox(make, session)
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact="7001", text="Is my order shipped?"))
    assignment.assign(session, conv, agent)
    session.commit()

    clock.to(T0 + timedelta(hours=24, minutes=-121))
    assert run(app, "watch_windows")
    assert notes(session, "window_closing") == []

    clock.to(T0 + timedelta(hours=24, minutes=-119))
    captured_events.clear()
    assert run(app, "watch_windows")
    first = notes(session, "window_closing")
    assert [(n.user_id, n.data["minutes"]) for n in first] == [(agent.id, 120)]
    assert "closes at 09:00 UTC" in first[0].data["text"]
    pushed = [e for e in captured_events if e.name == "notification.created"]
    assert [e.audience for e in pushed] == [(("user", agent.id),)]
    assert pushed[0].payload["desktop"] is True and pushed[0].payload["kind"] == "window_closing"

    for minutes in (-118, -100, -31):  # later runs before the next threshold: nothing new
        clock.to(T0 + timedelta(hours=24, minutes=minutes))
        assert run(app, "watch_windows")
    assert len(notes(session, "window_closing")) == 1

    clock.to(T0 + timedelta(hours=24, minutes=-29))
    assert run(app, "watch_windows")
    assert [n.data["minutes"] for n in notes(session, "window_closing")] == [120, 30]
    assert notes(session, "window_closing", other) == []  # assigned: only the assignee

    clock.to(T0 + timedelta(hours=24, seconds=20))
    captured_events.clear()
    assert run(app, "watch_windows")
    updates = [e.payload for e in captured_events if e.name == "conversation.updated"]
    assert [u["reply_window"]["state"] for u in updates] == ["closed"]
    lines = list(
        session.scalars(
            sa.select(Message.body).where(
                Message.conversation_id == conv.id,
                Message.direction == "activity",
                Message.body.like("%closed before anyone replied%"),
            )
        )
    )
    assert lines == ["The Messenger 24-hour window closed before anyone replied"]

    clock.shift(seconds=40)  # the next run overlaps the last one: still one line, no new event
    captured_events.clear()
    assert run(app, "watch_windows")
    assert not [e for e in captured_events if e.name == "conversation.updated"]
    assert (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Message)
            .where(Message.body.like("%closed before anyone replied%"))
        )
        == 1
    )
    assert len(notes(session, "window_closing")) == 2


def test_unassigned_conversation_warns_every_member_and_not_other_users(app, make, session, clock):
    agent, other, inbox = _timeline_inbox(make, session, window_warnings_minutes=[45])
    outsider = make.user(name="Cy")
    make.inbox("messenger", members=[outsider])
    clock.to(T0)
    make.inbound(inbox, contact="7002")
    clock.to(T0 + timedelta(hours=23, minutes=30))
    timers.watch_windows()
    got = notes(session, "window_closing")
    assert sorted(n.user_id for n in got) == sorted([agent.id, other.id])
    assert {n.data["minutes"] for n in got} == {45}


def test_a_late_message_gets_only_the_most_urgent_warning(app, make, session, clock):
    agent, _other, inbox = _timeline_inbox(make, session)
    clock.to(T0)
    assert run(app, "watch_windows")  # the job has run before
    clock.shift(seconds=30)
    # the webhook arrives now, but the customer wrote 23 h 40 min ago: 20 minutes left
    msg = make.inbound(
        inbox, contact="7003", at=T0 + timedelta(seconds=30) - timedelta(hours=23, minutes=40)
    )
    conv = conv_of(session, msg)
    assignment.assign(session, conv, agent)
    session.commit()
    clock.shift(seconds=30)
    assert run(app, "watch_windows")
    got = notes(session, "window_closing")
    assert [(n.user_id, n.data["minutes"]) for n in got] == [(agent.id, 30)]
    assert "within 19 min" in got[0].data["text"]


def test_no_warning_once_answered_or_closed(app, make, session, clock):
    agent, _other, inbox = _timeline_inbox(make, session)
    online(session, agent)
    clock.to(T0)
    answered = conv_of(session, make.inbound(inbox, contact="7004"))
    reply(session, answered, agent)
    closed = conv_of(session, make.inbound(inbox, contact="7005"))
    from app.inbox import conversations

    conversations.set_status(session, closed, "closed", agent)
    session.commit()
    clock.to(T0 + timedelta(hours=23, minutes=45))
    timers.watch_windows()
    assert notes(session, "window_closing") == []


def test_human_agent_inbox_pushes_the_switch_to_the_seven_day_window(
    app, make, session, clock, captured_events
):
    agent, _other, inbox = _timeline_inbox(make, session, human_agent=True)
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact="7006"))
    clock.to(T0 + timedelta(hours=23, minutes=59))
    timers.watch_windows()
    clock.to(T0 + timedelta(hours=24, seconds=10))
    captured_events.clear()
    timers.watch_windows(since=T0 + timedelta(hours=23, minutes=59))
    states = [
        e.payload["reply_window"]["state"]
        for e in captured_events
        if e.name == "conversation.updated" and e.payload["id"] == conv.id
    ]
    assert states == ["human_agent"]
    assert notes(session, "window_closing") == []  # 7 days left: no warning yet
    clock.to(T0 + timedelta(days=7, minutes=-20))
    timers.watch_windows()
    got = notes(session, "window_closing")
    assert len(got) == 2 and {n.data["minutes"] for n in got} == {30}
    assert "7-day human agent window" in got[0].data["text"]


def test_sms_and_email_have_no_window_and_get_no_warning(app, make, session, clock):
    agent = make.user()
    sms = make.inbox("sms", members=[agent])
    clock.to(T0)
    make.inbound(sms, contact="+14155550100")
    clock.to(T0 + timedelta(hours=23, minutes=50))
    timers.watch_windows()
    assert notes(session, "window_closing") == []
    db.session.rollback()
