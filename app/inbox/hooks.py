"""Channel reactions to domain changes (GBM representative events, ...).

Kept apart so the domain modules stay channel-neutral: each hook looks at the
inbox's channel and queues best-effort provider actions in the outbox.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

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


def status_changed(session: Session, conv: Conversation, previous: str, by: User | None) -> None:
    """GBM: a closed conversation means the representative left."""
    if conv.inbox.channel == "gbm" and conv.status == "closed" and previous != "closed":
        queue_action(session, conv, "REPRESENTATIVE_LEFT", agent_name=by.name if by else None)


def assigned(session: Session, conv: Conversation, assignee: User | None) -> None:
    """GBM: an agent taking the conversation joins it as the representative."""
    if conv.inbox.channel == "gbm" and assignee is not None:
        queue_action(session, conv, "REPRESENTATIVE_JOINED", agent_name=assignee.name)
