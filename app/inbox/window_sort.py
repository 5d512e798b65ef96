"""The "window closing soonest" order of the conversation list.

Open windows come first, the one with the least time left on top; then windows kept
open by the human agent rule, by time left; then closed windows, the most recently
closed first; then conversations without a window (channels that have none, or a
customer who never wrote). Which of these a conversation is in depends on the time,
so each page is read at ``now``: one indexed query per group, limited to a page, and
only those few rows sorted together.

A cursor is ``["<group>:<time>", id]`` of the last row of the page.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import aware
from app.models import Conversation

OPEN, HUMAN_AGENT, CLOSED, NONE = 0, 1, 2, 3

_open_until = Conversation.window_open_until
_expires = Conversation.window_expires_at


def group(at: datetime):
    """The SQL expression of a conversation's group at ``at``."""
    return sa.case(
        (_open_until > at, OPEN),
        (_expires > at, HUMAN_AGENT),
        (_expires <= at, CLOSED),
        else_=NONE,
    )


def _groups(at: datetime) -> dict[int, tuple]:
    """Per group: (its condition, its sort column, descending)."""
    return {
        OPEN: (_open_until > at, _open_until, False),
        HUMAN_AGENT: (
            sa.and_(_expires > at, sa.or_(_open_until.is_(None), _open_until <= at)),
            _expires,
            False,
        ),
        CLOSED: (_expires <= at, _expires, True),
        NONE: (_expires.is_(None), None, False),
    }


def _after(col, desc: bool, value: datetime | None, last_id: int):
    """Rows of one group after the cursor's row."""
    if col is None:
        return Conversation.id > last_id
    if desc:
        return sa.or_(col < value, sa.and_(col == value, Conversation.id < last_id))
    return sa.or_(col > value, sa.and_(col == value, Conversation.id > last_id))


def parse_cursor(values: list) -> tuple[int, datetime | None, int]:
    """``["<group>:<time>", id]`` -> (group, time, id); ValueError when it is not one."""
    key, last_id = values
    grp, _, when = str(key).partition(":")
    grp = int(grp)
    if grp not in (OPEN, HUMAN_AGENT, CLOSED, NONE) or not isinstance(last_id, int):
        raise ValueError("not a window cursor")
    at = datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None
    if at is None and grp != NONE:
        raise ValueError("not a window cursor")
    return grp, at, last_id


def page(
    session: Session,
    conds: list,
    limit: int,
    cursor: tuple | None,
    at: datetime,
    options: tuple = (),
) -> tuple[list[Conversation], list | None]:
    """Up to ``limit`` conversations in window order (loaded with ``options``), and the next
    page's cursor values."""
    start = cursor[0] if cursor else OPEN
    ids = []
    for grp, (cond, col, desc) in _groups(at).items():
        if grp < start:
            continue
        where = [*conds, cond]
        if cursor and grp == start:
            where.append(_after(col, desc, cursor[1], cursor[2]))
        if col is None:
            order = [Conversation.id.asc()]
        elif desc:
            order = [col.desc(), Conversation.id.desc()]
        else:
            order = [col.asc(), Conversation.id.asc()]
        ids.append(
            sa.select(Conversation.id).where(*where).order_by(*order).limit(limit + 1).subquery()
        )
    if not ids:
        return [], None
    union = sa.union_all(*(sa.select(s.c.id) for s in ids)).subquery()
    grp = group(at)
    q = (
        sa.select(Conversation)
        .options(*options)
        .where(Conversation.id.in_(sa.select(union.c.id)))
        .order_by(
            grp,
            sa.case((grp == OPEN, _open_until), (grp == HUMAN_AGENT, _expires)).asc(),
            sa.case((grp == CLOSED, _expires)).desc(),
            sa.case((grp == CLOSED, -Conversation.id), else_=Conversation.id),
        )
        .limit(limit + 1)
    )
    rows = list(session.scalars(q).unique())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, [_key(last, at), last.id]


def _key(conv: Conversation, at: datetime) -> str:
    """The cursor's "<group>:<time>" for a row."""
    open_until, expires = aware(conv.window_open_until), aware(conv.window_expires_at)
    if open_until is not None and open_until > at:
        return f"{OPEN}:{open_until.isoformat()}"
    if expires is None:
        return f"{NONE}:"
    return f"{HUMAN_AGENT if expires > at else CLOSED}:{expires.isoformat()}"
