"""Greeting and away messages: once, never to automated mail, never outside the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.inbox import hours
from app.models import Conversation
from tests.automation.helpers import T0, conv_of, deliver, online, outbound, reply

GREETING = "Hi! Thanks for writing to Café Lumière, we answer within the hour."
AWAY = "We are closed right now (Mon-Fri 9:00-17:00, New York time). We will answer soon."
NEW_YORK_HOURS = {
    "timezone": "America/New_York",
    "days": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-07-03"],
}


def test_greeting_goes_out_once_on_the_first_conversation_through_the_graph(
    app, make, session, clock, graph
):
    agent = make.user()
    inbox = make.inbox("messenger", members=[agent], settings={"greeting": GREETING})
    clock.to(T0)
    first = make.inbound(inbox, contact="7100", text="Bonjour")
    first_conv = first.conversation_id
    make.inbound(inbox, contact="7100", text="Vous êtes là ?")
    make.inbound(inbox, contact="7100", text="Hello?", external_id=first.provider_id)  # replay
    deliver(app)
    assert graph.texts() == [GREETING]
    [greeting] = outbound(session, first_conv)
    assert greeting.automated and greeting.sender_user_id is None and greeting.status == "sent"
    conv = session.get(Conversation, first_conv)
    assert conv.greeted_at is not None
    assert conv.waiting_since is not None and conv.response_due_at is not None  # not an answer

    # a later conversation of the same contact (after a close and the reopen period) is not greeted
    from app.inbox import conversations

    conversations.set_status(session, conv, "closed", agent)
    session.commit()
    clock.shift(days=30)
    second = make.inbound(inbox, contact="7100", text="Me again")
    assert second.conversation_id != first_conv
    deliver(app)
    assert graph.texts() == [GREETING]
    # another contact is greeted
    make.inbound(inbox, contact="7101", text="Hi")
    deliver(app)
    assert graph.texts() == [GREETING, GREETING]


def test_no_greeting_when_the_first_message_arrives_after_the_window(
    app, make, session, clock, graph
):
    inbox = make.inbox("messenger", settings={"greeting": GREETING})
    clock.to(T0)
    late = make.inbound(inbox, contact="7102", at=T0 - timedelta(hours=25)).conversation_id
    deliver(app)
    assert graph.texts() == []
    assert outbound(session, late) == []


def test_no_greeting_or_away_to_automated_mail(app, make, session, clock):
    inbox = make.inbox(
        "email",
        settings={"greeting": GREETING, "away_message": AWAY, "business_hours": NEW_YORK_HOURS},
    )
    clock.to(datetime(2026, 3, 7, 12, 0, tzinfo=UTC))  # a Saturday: closed
    bounce = make.inbound(
        inbox, contact="mailer-daemon@example.net", text="Undeliverable", automated=True
    )
    auto_reply = make.inbound(
        inbox, contact="ooo@example.com", text="I am out of office", automated=True
    )
    assert outbound(session, bounce.conversation_id) == []
    assert outbound(session, auto_reply.conversation_id) == []
    # a person writing to the same inbox gets both
    person = make.inbound(inbox, contact="ann@example.com", text="Hello")
    assert [m.body for m in outbound(session, person.conversation_id)] == [GREETING, AWAY]


def test_greeting_and_away_never_to_an_opted_out_number(app, make, session, clock):
    from connectors.base import OptOut

    inbox = make.inbox("sms", settings={"greeting": GREETING})
    clock.to(datetime(2026, 3, 2, 18, 0, tzinfo=UTC))  # 10:00 in California
    from app.inbox.ingest import ingest

    ingest(
        session,
        inbox,
        [OptOut(inbox_key=inbox.route_key, contact_id="+14155550110", keyword="STOP", at=T0)],
    )
    msg = make.inbound(inbox, contact="+14155550110", text="hi")
    assert outbound(session, msg.conversation_id) == []


@pytest.mark.parametrize(
    ("utc", "is_open"),
    [
        (datetime(2026, 3, 2, 13, 59, tzinfo=UTC), False),  # Mon 08:59 New York (EST)
        (datetime(2026, 3, 2, 14, 0, tzinfo=UTC), True),  # Mon 09:00
        (datetime(2026, 3, 2, 21, 59, tzinfo=UTC), True),  # Mon 16:59
        (datetime(2026, 3, 2, 22, 0, tzinfo=UTC), False),  # Mon 17:00
        (datetime(2026, 3, 3, 2, 0, tzinfo=UTC), False),  # Tue 02:00 UTC = Mon 21:00 NY
        (datetime(2026, 3, 9, 13, 30, tzinfo=UTC), True),  # after the DST switch: 09:30 EDT
        (datetime(2026, 7, 3, 15, 0, tzinfo=UTC), False),  # Friday 11:00, a holiday
        (datetime(2026, 7, 2, 15, 0, tzinfo=UTC), True),  # Thursday 11:00
        (datetime(2026, 7, 4, 3, 0, tzinfo=UTC), False),  # UTC Saturday = Fri 23:00 NY (holiday)
        (datetime(2026, 7, 4, 15, 0, tzinfo=UTC), False),  # Saturday
    ],
)
def test_business_hours_in_the_inbox_time_zone(utc, is_open):
    assert hours.is_open(NEW_YORK_HOURS, utc) is is_open


def test_business_hours_span_past_midnight():
    night = {"timezone": "Asia/Tokyo", "days": {"fri": [["22:00", "02:00"]]}, "holidays": []}
    assert hours.is_open(night, datetime(2026, 3, 6, 13, 30, tzinfo=UTC))  # Fri 22:30 Tokyo
    assert hours.is_open(night, datetime(2026, 3, 6, 16, 30, tzinfo=UTC))  # Sat 01:30 Tokyo
    assert not hours.is_open(night, datetime(2026, 3, 6, 17, 30, tzinfo=UTC))  # Sat 02:30
    assert hours.next_opening(night, datetime(2026, 3, 6, 17, 30, tzinfo=UTC)) == datetime(
        2026, 3, 13, 13, 0, tzinfo=UTC
    )


def test_away_message_respects_hours_time_zone_and_holiday(app, make, session, clock, graph):
    inbox = make.inbox(
        "messenger", settings={"away_message": AWAY, "business_hours": NEW_YORK_HOURS}
    )
    # Monday 10:00 UTC is 05:00 in New York: closed, though it is daytime in UTC
    clock.to(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    early = make.inbound(inbox, contact="7200", text="Anyone?").conversation_id
    deliver(app)
    # Monday 15:00 UTC is 10:00 in New York: open
    clock.to(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    during = make.inbound(inbox, contact="7201", text="Hello").conversation_id
    deliver(app)
    # a Friday that is a holiday, at 11:00 New York time
    clock.to(datetime(2026, 7, 3, 15, 0, tzinfo=UTC))
    holiday = make.inbound(inbox, contact="7202", text="Open today?").conversation_id
    deliver(app)
    assert [m.body for m in outbound(session, early)] == [AWAY]
    assert outbound(session, during) == []
    assert [m.body for m in outbound(session, holiday)] == [AWAY]
    assert graph.texts() == [AWAY, AWAY]


def test_away_at_most_once_per_period_and_not_right_after_an_agent_reply(app, make, session, clock):
    agent = make.user()
    inbox = make.inbox(
        "messenger",
        members=[agent],
        settings={"away_message": AWAY, "business_hours": NEW_YORK_HOURS, "away_interval_hours": 6},
    )
    online(session, agent)
    clock.to(datetime(2026, 3, 3, 1, 0, tzinfo=UTC))  # Mon 20:00 New York: closed
    first = make.inbound(inbox, contact="7300", text="Hi")
    conv_id = first.conversation_id
    for minutes in (1, 30, 300):  # the customer keeps writing within six hours: one away message
        clock.to(datetime(2026, 3, 3, 1, minutes % 60, tzinfo=UTC) + timedelta(hours=minutes // 60))
        make.inbound(inbox, contact="7300", text=f"still there? {minutes}")
    assert [m.body for m in outbound(session, conv_id, automated=True)] == [AWAY]

    clock.to(datetime(2026, 3, 3, 7, 30, tzinfo=UTC))  # 6.5 h later, still night in New York
    reply(session, conv_of(session, first), agent, "I'm here late, what do you need?")
    clock.shift(minutes=2)
    make.inbound(inbox, contact="7300", text="Great, my order 1234")
    assert len(outbound(session, conv_id, automated=True)) == 1  # an agent just answered
    clock.shift(minutes=10)
    make.inbound(inbox, contact="7300", text="hello?")
    assert len(outbound(session, conv_id, automated=True)) == 2  # the agent left again


def test_an_automatic_message_does_not_cancel_a_scheduled_reply(app, make, session, clock):
    agent = make.user()
    inbox = make.inbox(
        "messenger",
        members=[agent],
        settings={"away_message": AWAY, "business_hours": NEW_YORK_HOURS, "away_skip_minutes": 0},
    )
    online(session, agent)
    clock.to(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))  # open
    msg = make.inbound(inbox, contact="7400")
    from app.inbox import replies

    conv = conv_of(session, msg)
    scheduled, _ = replies.post_message(
        session,
        conv,
        agent,
        "Morning follow-up",
        send_after=datetime(2026, 3, 2, 20, 0, tzinfo=UTC),
    )
    session.commit()
    clock.to(datetime(2026, 3, 2, 22, 30, tzinfo=UTC))  # closed now; the customer writes
    make.inbound(inbox, contact="7400", text="one more thing")
    session.refresh(scheduled)
    assert scheduled.status == "queued"  # the away message did not cancel it
    assert [m.body for m in outbound(session, conv.id, automated=True)] == [AWAY]
