"""The reports' counters agree with counting the messages and events themselves."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import sqlalchemy as sa

from app.clock import aware
from app.inbox import seed
from app.models import Message, ReportCount, ReportEvent, ReportWait
from app.models.report import NOBODY, QUARTERS, slot_of
from tests.automation.helpers import conv_of, reply


def _direct(session) -> Counter:
    """The counters recomputed from every stored message."""
    out: Counter = Counter()
    rows = session.execute(
        sa.select(
            Message.created_at,
            Message.inbox_id,
            Message.direction,
            Message.sender_user_id,
            Message.automated,
        )
    )
    for at, inbox_id, direction, user, automated in rows:
        if direction not in ("inbound", "outbound"):
            continue
        slot = slot_of(aware(at))
        out[(direction, NOBODY, slot, inbox_id)] += 1
        if user is not None:
            out[(f"{direction}_by", user, slot, inbox_id)] += 1
            if direction == "outbound" and not automated:
                out[("reply", user, slot, inbox_id)] += 1
    return out


def _events(session) -> Counter:
    out: Counter = Counter()
    rows = session.execute(
        sa.select(ReportEvent.kind, ReportEvent.slot, ReportEvent.inbox_id, ReportEvent.user_id)
    )
    for kind, slot, inbox_id, user in rows:
        out[(kind, NOBODY, slot, inbox_id)] += 1
        if user is not None:
            out[(f"{kind}_by", user, slot, inbox_id)] += 1
    return out


def _answered(session) -> Counter:
    """Answered waits, and those answered after their response target, per agent too."""
    out: Counter = Counter()
    rows = session.execute(
        sa.select(
            ReportWait.answered_slot,
            ReportWait.inbox_id,
            ReportWait.agent_id,
            ReportWait.breached_at,
        ).where(ReportWait.answered_slot.is_not(None))
    )
    for slot, inbox_id, agent, breached in rows:
        for kind in ("answered", "late") if breached is not None else ("answered",):
            out[(kind, NOBODY, slot, inbox_id)] += 1
            if agent is not None:
                out[(f"{kind}_by", agent, slot, inbox_id)] += 1
    return out


def _counters(session) -> Counter:
    """The counters, one key per kind, user, slot and inbox (each row's total: its slots')."""
    c = ReportCount.__table__.c
    out: Counter = Counter()
    columns = [c[f"q{n}"] for n in range(QUARTERS)]
    for kind, user, day, inbox_id, total, *quarters in session.execute(
        sa.select(c.kind, c.user_id, c.day, c.inbox_id, c.total, *columns)
    ):
        assert total == sum(quarters), (kind, user, day, inbox_id)
        for q, n in enumerate(quarters):
            if n:
                out[(kind, user, day * QUARTERS + q, inbox_id)] += n
    return out


def test_counters_match_a_direct_count_of_the_messages(client, make, session, clock):
    """Seeded, received through the webhook path and replied to: each slot's counts are exact."""
    clock.to(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    seed.seed(session, 60, 5, rng=random.Random(7), days=30)
    agent, other = make.user(name="Ana"), make.user(name="Ben")
    inbox = make.inbox("messenger", members=[agent, other])
    conv = conv_of(session, make.inbound(inbox, contact="77", text="Hello?"))
    clock.shift(minutes=14)
    make.inbound(inbox, contact="77", text="Anyone there?")
    clock.shift(minutes=2)  # the reply falls in the next 15-minute slot
    reply(session, conv, agent)
    reply(session, conv, other)
    session.commit()

    counted = _counters(session)
    assert counted == _direct(session) + _events(session) + _answered(session)
    slot = slot_of(datetime(2026, 3, 2, 9, 15, tzinfo=UTC))
    assert counted[("answered", NOBODY, slot, inbox.id)] == 1  # the first reply answered
    assert counted[("answered_by", agent.id, slot, inbox.id)] == 1
    assert (
        counted[("inbound", NOBODY, slot_of(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)), inbox.id)] == 2
    )
    assert counted[("reply", agent.id, slot, inbox.id)] == 1
    assert counted[("outbound", NOBODY, slot, inbox.id)] == 2
    # the seed recorded first responses and reopenings as they would have happened
    assert session.scalar(sa.select(sa.func.count()).where(ReportWait.first.is_(True))) > 0
