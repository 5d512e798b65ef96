"""The team as a lead sees it, and where a teammate's conversations go when they leave."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.inbox.assignment import assign, open_load
from app.models import Conversation, User

#: A reply window closing within this time puts a waiting conversation at risk.
AT_RISK_WINDOW = timedelta(hours=2)
AT_RISK_LIMIT = 50
OLDEST_LIMIT = 10


@dataclass
class TeamOverview:
    """Who carries what, what is at risk, and the unassigned queue, at one moment."""

    at: datetime
    agents: list[User]  # agents and leads, and anyone else who carries conversations
    load: dict[int, int]  # open conversations assigned, by user id
    overdue: dict[int, int]  # of those, past their response due time, by user id
    at_risk: list[Conversation]  # reply window closing soon, or response overdue
    queue_count: int  # open and unassigned
    oldest_since: datetime | None  # the longest any unassigned conversation has waited
    oldest: list[Conversation] = field(default_factory=list)  # the longest-waiting ones


def overview(session: Session, at: datetime) -> TeamOverview:
    """The team lead's overview at ``at``: each agent's load, conversations at risk, the queue."""
    people = list(session.scalars(sa.select(User).where(User.active.is_(True)).order_by(User.name)))
    load = open_load(session, [u.id for u in people])
    live = Conversation.status.in_(("open", "pending"))
    risky = sa.or_(
        sa.and_(
            Conversation.window_expires_at.is_not(None),
            Conversation.window_expires_at > at,
            Conversation.window_expires_at <= at + AT_RISK_WINDOW,
            Conversation.waiting_since.is_not(None),
        ),
        Conversation.response_due_at <= at,
    )
    at_risk = list(
        session.scalars(
            sa.select(Conversation)
            .where(live, risky)
            .order_by(
                sa.func.coalesce(Conversation.window_expires_at, Conversation.response_due_at)
            )
            .limit(AT_RISK_LIMIT)
        ).unique()
    )
    overdue = {
        uid: n
        for uid, n in session.execute(
            sa.select(Conversation.assignee_id, sa.func.count())
            .where(live, Conversation.response_due_at <= at, Conversation.assignee_id.is_not(None))
            .group_by(Conversation.assignee_id)
        )
    }
    unassigned = Conversation.assignee_id.is_(None)
    queue_count, oldest_since = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.min(sa.func.coalesce(Conversation.waiting_since, Conversation.created_at)),
        ).where(Conversation.status == "open", unassigned)
    ).one()
    oldest = list(
        session.scalars(
            sa.select(Conversation)
            .where(Conversation.status == "open", unassigned)
            .order_by(
                sa.func.coalesce(Conversation.waiting_since, Conversation.created_at),
                Conversation.id,
            )
            .limit(OLDEST_LIMIT)
        ).unique()
    )
    return TeamOverview(
        at=at,
        agents=[u for u in people if u.role in ("agent", "lead") or load.get(u.id)],
        load=load,
        overdue=overdue,
        at_risk=at_risk,
        queue_count=int(queue_count or 0),
        oldest_since=oldest_since,
        oldest=oldest,
    )


def release_conversations(session: Session, user: User, by: User | None) -> None:
    """A deactivated teammate's conversations that are not closed return to the queue."""
    for conv in session.scalars(
        sa.select(Conversation).where(
            Conversation.assignee_id == user.id, Conversation.status != "closed"
        )
    ):
        assign(session, conv, None, by=by)
