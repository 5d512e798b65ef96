"""Who answers a conversation: manual, round-robin and least-loaded assignment."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import now
from app.inbox import events
from app.inbox.serialize import conversation_dict
from app.models import Conversation, InboxMember, Notification, User

MODES = ("manual", "round_robin", "least_loaded")


def open_load(session: Session, user_ids: list[int]) -> dict[int, int]:
    """Open (not closed) conversations assigned to each user, in one query."""
    if not user_ids:
        return {}
    rows = session.execute(
        sa.select(Conversation.assignee_id, sa.func.count())
        .where(Conversation.assignee_id.in_(user_ids), Conversation.status != "closed")
        .group_by(Conversation.assignee_id)
    )
    load = dict.fromkeys(user_ids, 0)
    load.update({uid: n for uid, n in rows})
    return load


def eligible_agents(session: Session, inbox_id: int) -> list[tuple[User, int]]:
    """Members who are online, active and below capacity, with their current load."""
    members = list(
        session.scalars(
            sa.select(User)
            .join(InboxMember, InboxMember.user_id == User.id)
            .where(InboxMember.inbox_id == inbox_id, User.active.is_(True))
            .where(User.availability == "online")
        )
    )
    load = open_load(session, [u.id for u in members])
    return [(u, load[u.id]) for u in members if load[u.id] < (u.capacity or 0)]


def pick_agent(session: Session, conv: Conversation) -> User | None:
    """The agent the inbox's mode picks, or None (the conversation waits in the queue)."""
    mode = conv.inbox.setting("assignment")
    if mode not in ("round_robin", "least_loaded"):
        return None
    candidates = eligible_agents(session, conv.inbox_id)
    if not candidates:
        return None
    epoch = now().replace(year=1970, month=1, day=1)

    def last_assigned(user: User):
        return user.last_assigned_at or epoch

    if mode == "round_robin":
        candidates.sort(key=lambda c: (last_assigned(c[0]), c[0].id))
    else:
        candidates.sort(key=lambda c: (c[1], last_assigned(c[0]), c[0].id))
    return candidates[0][0]


def notify(session: Session, user_id: int, kind: str, conv: Conversation | None, **data) -> None:
    """Store an in-app notification and push it to the user."""
    note = Notification(
        user_id=user_id,
        kind=kind,
        conversation_id=conv.id if conv else None,
        data=data,
        created_at=now(),
        dedupe_key=data.pop("dedupe_key", None),
    )
    note.data = data
    session.add(note)
    session.flush()
    events.publish(session, "notification.created", note.to_dict(), ("user", user_id))


def assign(
    session: Session, conv: Conversation, assignee: User | None, by: User | None = None
) -> bool:
    """Set (or clear) the assignee; writes an activity line, notifies, publishes."""
    from app.inbox.ingest import add_activity

    if (conv.assignee_id or None) == (assignee.id if assignee else None):
        return False
    conv.assignee_id = assignee.id if assignee else None
    conv.assignee = assignee
    conv.assigned_at = now() if assignee else None
    who = by.name if by else "Automatic assignment"
    if assignee:
        assignee.last_assigned_at = now()
        add_activity(session, conv, f"{who} assigned this to {assignee.name}", event="assigned",
                     assignee_id=assignee.id)
        if by is None or by.id != assignee.id:
            notify(session, assignee.id, "assigned", conv, by=who)
    else:
        add_activity(session, conv, f"{who} unassigned this", event="unassigned")
    from app.inbox import hooks

    hooks.assigned(session, conv, assignee)
    session.flush()
    events.publish(session, "conversation.updated", conversation_dict(conv), ("inbox", conv.inbox_id))
    events.publish(session, "counts.updated", {"inbox_id": conv.inbox_id}, ("inbox", conv.inbox_id))
    return True


def auto_assign(session: Session, conv: Conversation) -> User | None:
    """Assign a new conversation by the inbox's mode; None leaves it in the queue."""
    if conv.assignee_id is not None:
        return None
    agent = pick_agent(session, conv)
    if agent is not None:
        assign(session, conv, agent)
    return agent
