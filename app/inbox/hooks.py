"""Channel reactions to domain changes (an agent joining, "seen", typing).

Kept apart so the domain modules stay channel-neutral: each hook asks the
inbox's channel adapter which signal it has (if any) and queues it as a
best-effort provider action in the outbox. :func:`on_status_changed` and
:func:`on_assigned` receive the domain signals (:mod:`app.inbox.wiring`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import channels
from app.clock import aware, now
from app.models import ContactIdentity, Conversation, Message, OutboxItem, User


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


def on_status_changed(
    conv: Conversation, *, session: Session, previous: str, by: User | None, **_
) -> None:
    """Receiver of ``signals.status_changed``: closing a conversation, where the channel
    says so, the representative left (GBM)."""
    action = channels.get(conv.inbox.channel).left_action
    if action and conv.status == "closed" and previous != "closed":
        # closed by a job: the assignee is the representative who leaves
        queue_action(session, conv, action, **_representative(by or conv.assignee))


def on_assigned(conv: Conversation, *, session: Session, assignee: User | None, **_) -> None:
    """Receiver of ``signals.assigned``: an agent taking the conversation joins it as the
    representative, where the channel shows one (GBM)."""
    action = channels.get(conv.inbox.channel).joined_action
    if action and assignee is not None:
        queue_action(session, conv, action, **_representative(assignee))


def can_mark_seen(conv: Conversation) -> bool:
    """True when the conversation's channel has a "seen" signal for the customer."""
    return channels.get(conv.inbox.channel).seen_action is not None and conv.identity_id is not None


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
                "action": channels.get(conv.inbox.channel).seen_action,
                # the customer's latest message (WhatsApp marks it and those before it)
                "kwargs": {"message_id": _last_inbound_id(session, conv)},
            },
        )
    )
    return True


def _last_inbound_id(session: Session, conv: Conversation) -> str | None:
    """The provider's id of the customer's latest message in ``conv``."""
    return session.scalar(
        sa.select(Message.provider_id)
        .where(
            Message.conversation_id == conv.id,
            Message.direction == "inbound",
            Message.provider_id.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )


def replying(session: Session, conv: Conversation, user: User | None, at: datetime) -> None:
    """An agent is about to queue a reply: mark the customer's unanswered messages seen."""
    if user is None or not can_mark_seen(conv) or conv.last_inbound_at is None:
        return
    last_in, last_out = aware(conv.last_inbound_at), aware(conv.last_outbound_at)
    if last_out is None or last_in > last_out:  # something from the customer is unseen
        mark_seen(session, conv, at)
