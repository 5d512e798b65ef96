"""Follow-ups: our reply was last and the customer has not answered by the next day."""

from __future__ import annotations

from datetime import timedelta

from app.clock import aware
from app.inbox import assignment
from tests.automation.helpers import (
    T0,
    conv_of,
    fresh_conv,
    notes,
    online,
    outbound,
    reply,
    run,
)

NUDGE = "Did that solve it? Just reply here if you need anything else."


def _answered(
    make, session, clock, channel="email", contact="erin@example.com", assign=True, **settings
):
    agent = make.user(name="Ana")
    inbox = make.inbox(channel, members=[agent], settings=settings)
    online(session, agent)
    clock.to(T0)
    conv = conv_of(session, make.inbound(inbox, contact=contact, text="Can I change my order?"))
    if assign:
        assignment.assign(session, conv, agent)
        session.commit()
    clock.to(T0 + timedelta(hours=1))
    reply(session, conv, agent, "Yes, which size would you like?")
    return agent, inbox, conv


def test_reminder_to_the_assignee_the_next_day_once(app, make, session, clock):
    agent, _inbox, conv = _answered(make, session, clock)
    assert aware(fresh_conv(session, conv.id).follow_up_due_at) == T0 + timedelta(hours=25)
    clock.to(T0 + timedelta(hours=24, minutes=59))
    assert run(app, "follow_ups")
    assert notes(session, "follow_up") == []
    clock.to(T0 + timedelta(hours=25, seconds=30))
    assert run(app, "follow_ups")
    [reminder] = notes(session, "follow_up")
    assert reminder.user_id == agent.id and reminder.conversation_id == conv.id
    assert "has not answered for 24 h" in reminder.data["text"]
    for minutes in (2, 5, 90):
        clock.to(T0 + timedelta(hours=25, minutes=minutes))
        assert run(app, "follow_ups")
    assert len(notes(session, "follow_up")) == 1


def test_no_reminder_when_the_customer_answered(app, make, session, clock):
    _agent, inbox, conv = _answered(make, session, clock, channel="messenger", contact="7600")
    clock.to(T0 + timedelta(hours=5))
    make.inbound(inbox, contact="7600", text="Size M please")
    fresh = fresh_conv(session, conv.id)
    assert fresh.follow_up_due_at is None
    clock.to(T0 + timedelta(hours=30))
    assert run(app, "follow_ups")
    assert notes(session, "follow_up") == []


def test_unassigned_reminder_goes_to_the_agent_who_replied(app, make, session, clock):
    agent, _inbox, conv = _answered(make, session, clock, assign=False)
    clock.to(T0 + timedelta(hours=26))
    assert run(app, "follow_ups")
    assert [n.user_id for n in notes(session, "follow_up")] == [agent.id]


def test_automatic_follow_up_message_when_the_window_allows(app, make, session, clock):
    # Google Business Messages: 30 days to answer, so a next-day follow-up can go out
    _agent, _inbox, conv = _answered(
        make,
        session,
        clock,
        channel="gbm",
        contact="gbm-conv-1",
        follow_up_auto=True,
        follow_up_message=NUDGE,
    )
    clock.to(T0 + timedelta(hours=25, seconds=5))
    assert run(app, "follow_ups")
    clock.shift(minutes=1)
    assert run(app, "follow_ups")
    sent = outbound(session, conv.id, automated=True)
    assert [m.body for m in sent] == [NUDGE] and sent[0].sender_user_id is None
    assert notes(session, "follow_up") == []  # sent instead of a reminder
    fresh = fresh_conv(session, conv.id)
    assert fresh.follow_up_due_at is None and fresh.follow_up_done_at is not None
    assert fresh.waiting_since is None  # nothing from the customer waits


def test_automatic_follow_up_never_outside_the_window_falls_back_to_a_reminder(
    app, make, session, clock
):
    # Messenger: the 24-hour window closed at T0 + 24 h, the follow-up is due at T0 + 25 h
    agent, _inbox, conv = _answered(
        make,
        session,
        clock,
        channel="messenger",
        contact="7500",
        follow_up_auto=True,
        follow_up_message=NUDGE,
    )
    clock.to(T0 + timedelta(hours=25, seconds=5))
    assert run(app, "follow_ups")
    assert outbound(session, conv.id, automated=True) == []
    assert [n.user_id for n in notes(session, "follow_up")] == [agent.id]


def test_follow_ups_can_be_switched_off(app, make, session, clock):
    _agent, _inbox, conv = _answered(make, session, clock, follow_up_reminders=False)
    assert fresh_conv(session, conv.id).follow_up_due_at is None
    clock.to(T0 + timedelta(days=3))
    assert run(app, "follow_ups")
    assert notes(session, "follow_up") == []
