"""The team as a lead sees it, and where a teammate's conversations go when they leave."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import aware
from app.inbox.assignment import assign, open_load
from app.models import Conversation, User

#: A reply window closing within this time puts a waiting conversation at risk.
AT_RISK_WINDOW = timedelta(hours=2)
AT_RISK_LIMIT = 50
QUEUE_PAGE = 25  # the unassigned queue comes in pages of this many (more with a cursor)
QUEUE_MAX_PAGE = 100


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
    oldest: list[Conversation] = field(default_factory=list)  # the queue's first page
    next_cursor: str | None = None  # for the queue's next page (:func:`queue_page`)
    connected: set[int] = field(default_factory=set)  # users with a browser connected now


def is_connected(user: User, at: datetime) -> bool:
    """A browser of the user is connected now (its heartbeat is live), whatever their
    availability setting says."""
    return user.online_until is not None and aware(user.online_until) > at


_WAITED = sa.func.coalesce(Conversation.waiting_since, Conversation.created_at)


def _encode(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def queue_page(
    session: Session, cursor: str | None = None, limit: int = QUEUE_PAGE
) -> tuple[list[Conversation], str | None]:
    """One page of the unassigned queue (open, nobody assigned), waiting longest first.

    Returns the conversations and the cursor of the next page (None at the end).
    Raises ``ValueError`` for a cursor this did not make.
    """
    query = sa.select(Conversation).where(
        Conversation.status == "open", Conversation.assignee_id.is_(None)
    )
    if cursor:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            since_text, last_id = json.loads(raw)
            since = datetime.fromisoformat(since_text)
            last_id = int(last_id)
        except (ValueError, TypeError) as exc:
            raise ValueError("cursor is not valid") from exc
        query = query.where(
            sa.or_(since < _WAITED, sa.and_(since == _WAITED, Conversation.id > last_id))
        )
    limit = max(1, min(QUEUE_MAX_PAGE, limit))
    rows = list(session.scalars(query.order_by(_WAITED, Conversation.id).limit(limit + 1)).unique())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    waited = last.waiting_since or last.created_at
    return rows, _encode([aware(waited).replace(tzinfo=None).isoformat(), last.id])


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
    oldest, next_cursor = queue_page(session)
    return TeamOverview(
        at=at,
        agents=[u for u in people if u.role in ("agent", "lead") or load.get(u.id)],
        load=load,
        overdue=overdue,
        at_risk=at_risk,
        queue_count=int(queue_count or 0),
        oldest_since=oldest_since,
        oldest=oldest,
        next_cursor=next_cursor,
        connected={u.id for u in people if is_connected(u, at)},
    )


def release_conversations(session: Session, user: User, by: User | None) -> None:
    """A deactivated teammate's conversations that are not closed return to the queue."""
    for conv in session.scalars(
        sa.select(Conversation).where(
            Conversation.assignee_id == user.id, Conversation.status != "closed"
        )
    ):
        assign(session, conv, None, by=by)
