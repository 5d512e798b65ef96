"""Channel reactions to domain changes (GBM representative events, ...).

Kept apart so the domain modules stay channel-neutral: each hook looks at the
inbox's channel and queues best-effort provider actions in the outbox.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.clock import aware, now
from app.models import ContactIdentity, Conversation, OutboxItem, User


def queue_action(session: Session, conv: Conversation, action: str, **kwargs) -> None:
    """Queue a provider action (typing, mark seen, representative joined ...)."""
    ident = session.get(ContactIdentity, conv.identity_id) if conv.identity_id else None
    if ident is None:
        return
    session.add(
        OutboxItem(
            kind="action",
            inbox_id=conv.inbox_id,
            payload={"contact_id": ident.external_id, "action": action, "kwargs": kwargs},
        )
    )


def _representative(user: User | None) -> dict:
    """The ``send_action`` keywords naming the agent (GBM ``representative``)."""
    if user is None:
        return {}
    return {"agent_name": user.name, "agent_avatar_url": user.avatar_url}


def status_changed(session: Session, conv: Conversation, previous: str, by: User | None) -> None:
    """GBM: a closed conversation means the representative left."""
    if conv.inbox.channel == "gbm" and conv.status == "closed" and previous != "closed":
        # closed by a job: the assignee is the representative who leaves
        queue_action(session, conv, "REPRESENTATIVE_LEFT", **_representative(by or conv.assignee))


def assigned(session: Session, conv: Conversation, assignee: User | None) -> None:
    """GBM: an agent taking the conversation joins it as the representative."""
    if conv.inbox.channel == "gbm" and assignee is not None:
        queue_action(session, conv, "REPRESENTATIVE_JOINED", **_representative(assignee))


#: Channels that can tell the customer their messages were seen, and the action for it.
SEEN_ACTIONS = {"messenger": "mark_seen"}


def can_mark_seen(conv: Conversation) -> bool:
    """True when the conversation's channel has a "seen" signal for the customer."""
    return conv.inbox.channel in SEEN_ACTIONS and conv.identity_id is not None


def mark_seen(session: Session, conv: Conversation, at: datetime | None = None) -> bool:
    """Queue the channel's "seen" signal (Messenger ``mark_seen``); False when it has none.

    Never called because an agent opened a conversation: the customer sees "seen" at
    once, so it is sent only when the agent replies or asks for it. ``at`` makes it due
    no later than a reply queued at the same time, so it goes out first.
    """
    if not can_mark_seen(conv):
        return False
    ident = session.get(ContactIdentity, conv.identity_id)
    if ident is None:
        return False
    session.add(
        OutboxItem(
            kind="action",
            inbox_id=conv.inbox_id,
            next_attempt_at=at or now(),
            payload={
                "contact_id": ident.external_id,
                "action": SEEN_ACTIONS[conv.inbox.channel],
                "kwargs": {},
            },
        )
    )
    return True


def replying(session: Session, conv: Conversation, user: User | None, at: datetime) -> None:
    """An agent is about to queue a reply: mark the customer's unanswered messages seen."""
    if user is None or not can_mark_seen(conv) or conv.last_inbound_at is None:
        return
    last_in, last_out = aware(conv.last_inbound_at), aware(conv.last_outbound_at)
    if last_out is None or last_in > last_out:  # something from the customer is unseen
        mark_seen(session, conv, at)
