"""Conversation state changes: open, pending, snoozed, closed; read state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.clock import now
from app.inbox import activity, events, signals
from app.inbox.activity import Line, add_activity
from app.inbox.serialize import conversation_dict
from app.models import Conversation, User
from app.models.conversation import STATUSES


class InvalidStatus(ValueError):
    """An impossible status change (unknown status, snooze without a future time)."""


def set_status(
    session: Session,
    conv: Conversation,
    status: str | None,
    by: User | None,
    snooze_until: datetime | None = None,
    note: Line | None = None,
) -> bool:
    """Change the status; writes an activity line and publishes. Returns True if changed.

    ``note`` replaces the activity text (closed automatically, declined ...). Sends
    :data:`~app.inbox.signals.status_changed`: closing an assigned conversation frees
    capacity, and assignment offers the unassigned queue to it.
    """
    if status not in STATUSES:
        raise InvalidStatus(f"status must be one of {', '.join(STATUSES)}")
    at = now()
    who = by.name if by else "Switchboard"
    if status == "snoozed":
        if snooze_until is None or snooze_until <= at:
            raise InvalidStatus("snooze_until must be a time in the future.")
        conv.snooze_until = snooze_until
        said = activity.line(activity.SNOOZED, who=who, until=f"{snooze_until:%Y-%m-%d %H:%M}")
    else:
        if conv.status == status:
            return False
        conv.snooze_until = None
        template = {
            "open": activity.REOPENED,
            "pending": activity.PENDING,
            "closed": activity.CLOSED,
        }
        said = activity.line(template[status], who=who)
    previous = conv.status
    conv.status = status
    conv.closed_at = at if status == "closed" else None
    conv.last_activity_at = at
    add_activity(session, conv, note or said, event=status, previous=previous)
    events.publish(
        session, "conversation.updated", conversation_dict(conv), ("inbox", conv.inbox_id)
    )
    events.publish(session, "counts.updated", {"inbox_id": conv.inbox_id}, ("inbox", conv.inbox_id))
    # the channel's hooks (GBM: the representative left), then the freed capacity is used
    signals.status_changed.send(conv, session=session, previous=previous, by=by)
    return True


def mark_read(session: Session, conv: Conversation) -> None:
    """Clear the unread count (the customer is not told: no 'seen' is sent)."""
    if conv.unread_count:
        conv.unread_count = 0
        events.publish(
            session, "conversation.updated", conversation_dict(conv), ("inbox", conv.inbox_id)
        )
