"""Timer jobs: snoozed conversations wake up at their time."""

from __future__ import annotations

import sqlalchemy as sa

from app.clock import now
from app.extensions import db
from app.inbox import events
from app.inbox.ingest import add_activity
from app.inbox.serialize import conversation_dict
from app.models import Conversation


def wake_snoozed(batch: int = 500) -> int:
    """Reopen conversations whose snooze time has come; returns how many."""
    session = db.session
    at = now()
    convs = list(
        session.scalars(
            sa.select(Conversation)
            .where(Conversation.status == "snoozed", Conversation.snooze_until <= at)
            .limit(batch)
        )
    )
    for conv in convs:
        conv.status = "open"
        conv.snooze_until = None
        conv.last_activity_at = at
        add_activity(session, conv, "Snooze ended: back to open", event="woken")
        events.publish(session, "conversation.updated", conversation_dict(conv), ("inbox", conv.inbox_id))
        events.publish(session, "counts.updated", {"inbox_id": conv.inbox_id}, ("inbox", conv.inbox_id))
    session.commit()
    return len(convs)
