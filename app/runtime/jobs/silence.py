"""The silence watch: a busy inbox that suddenly receives nothing is probably cut off.

A webhook subscription removed at the provider, a forwarding rule deleted, a
number moved to another account: nothing fails on our side, messages just stop.
So an inbox is *busy* when its customers wrote at least
:data:`BUSY_MESSAGES_PER_DAY` messages a day over the past :data:`BUSY_DAYS`
days (35 in a week), and a busy inbox that received no event at all (message,
receipt, echo: ``inbox.last_event_at``) for its ``silence_alert_hours``
setting (24 by default; 0 switches it off) gets an incident with the reason
``silent`` (:mod:`app.inbox.health`: admins are told once). A quiet inbox never
does. The first run after an event arrives again closes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.clock import aware, iso, now
from app.extensions import db
from app.inbox import health
from app.models import Inbox, Message

BUSY_DAYS = 7
BUSY_MESSAGES_PER_DAY = 5


def recent_customer_messages(session, inbox_id: int, at: datetime) -> int:
    """How many messages the inbox's customers sent in the past :data:`BUSY_DAYS` days."""
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(Message)
        .where(
            Message.inbox_id == inbox_id,
            Message.direction == "inbound",
            Message.created_at >= at - timedelta(days=BUSY_DAYS),
        )
    )


def watch_silence() -> dict:
    """The ``watch_silence`` job: open or close the ``silent`` incident of each active inbox."""
    session = db.session
    at = now()
    done = {"silent": 0, "recovered": 0}
    for inbox in list(session.scalars(sa.select(Inbox).where(Inbox.active.is_(True)))):
        hours = float(inbox.setting("silence_alert_hours") or 0)
        last = aware(inbox.last_event_at)
        quiet_since = at - timedelta(hours=hours)
        found = health.incident(inbox)
        if found is not None and found.get("source") == "silence":
            if not hours or (last is not None and last > quiet_since):
                done["recovered"] += health.inbox_recovered(session, inbox, source="silence")
            continue
        if not hours or last is None or last > quiet_since or found is not None:
            continue  # off, never received anything, heard from lately, or failing already
        count = recent_customer_messages(session, inbox.id, at)
        if count < BUSY_MESSAGES_PER_DAY * BUSY_DAYS:
            continue  # a quiet inbox: silence is normal
        message = (
            f"Nothing received since {iso(last)} ({count} customer messages in the past "
            f"{BUSY_DAYS} days)"
        )
        done["silent"] += health.inbox_failing(session, inbox, "silent", message, source="silence")
    session.commit()
    return done
