"""The conversation list: filters, sorts, keyset pagination and the three counts.

One query for the page (inbox, contact and assignee joined), one for the
contacts' identities, one for the conversations' labels, one for the counts:
the list stays within a fixed number of queries whatever the page size.
"""

from __future__ import annotations

import base64
import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import aware
from app.inbox import search
from app.inbox.labels import name_key
from app.models import (
    STATUSES,
    Conversation,
    ConversationCount,
    Inbox,
    InboxMember,
    Label,
    User,
    conversation_labels,
)

SORTS = ("last_activity", "waiting_longest", "window_expiring", "created")
STATUS_FILTERS = ("open", "pending", "snoozed", "closed", "all", "inactive", "declined")
MAX_LIMIT = 100
MAX_LABELS = 10  # label filters of one list request (each one is a condition)


class BadFilter(ValueError):
    """A list filter the API cannot understand (answered with 400)."""


@dataclass
class ListFilter:
    """What the agent asked the list for."""

    status: str = "open"
    assignee: str = "any"  # me | unassigned | any | <user id>
    channel: str | None = None
    inbox: int | None = None
    q: str | None = None
    sort: str = "last_activity"
    limit: int = 25
    cursor: str | None = None
    labels: tuple[str, ...] = ()  # case-folded names; a conversation must carry all of them
    region: str | None = None  # where a phone number typed without country code is read

    @classmethod
    def from_args(cls, args, region: str | None = None) -> ListFilter:
        """Parse and validate query-string arguments."""
        f = cls(
            region=region,
            status=(args.get("status") or "open").lower(),
            assignee=(args.get("assignee") or "any").lower(),
            channel=args.get("channel") or None,
            # NFC, as addresses are stored: a decomposed "josé@" finds the contact
            q=unicodedata.normalize("NFC", (args.get("q") or "").strip()) or None,
            sort=args.get("sort") or "last_activity",
            cursor=args.get("cursor") or None,
        )
        given = args.getlist("label") if hasattr(args, "getlist") else [args.get("label")]
        keys = [name_key(str(n)) for n in given if n and str(n).strip()]
        f.labels = tuple(dict.fromkeys(keys))
        if len(f.labels) > MAX_LABELS:
            raise BadFilter(f"at most {MAX_LABELS} label filters")
        if f.status not in STATUS_FILTERS:
            raise BadFilter(f"status must be one of {', '.join(STATUS_FILTERS)}")
        if f.sort not in SORTS:
            raise BadFilter(f"sort must be one of {', '.join(SORTS)}")
        if f.assignee not in ("me", "unassigned", "any") and not f.assignee.isdigit():
            raise BadFilter("assignee must be me, unassigned, any or a user id")
        try:
            f.limit = max(1, min(MAX_LIMIT, int(args.get("limit") or 25)))
            f.inbox = int(args["inbox"]) if args.get("inbox") else None
        except ValueError as exc:
            raise BadFilter("limit and inbox must be numbers") from exc
        return f


def visible_inbox_ids(user: User):
    """A subquery of inbox ids the user may see (None = all, for leads and admins)."""
    if user.is_lead:
        return None
    return sa.select(InboxMember.inbox_id).where(InboxMember.user_id == user.id).scalar_subquery()


def can_see(session: Session, user: User, inbox_id: int) -> bool:
    """True when ``user`` may see conversations of ``inbox_id``."""
    if user.is_lead:
        return True
    return session.get(InboxMember, {"inbox_id": inbox_id, "user_id": user.id}) is not None


def _status_condition(f: ListFilter):
    if f.status == "inactive":  # no interaction for the inbox's inactive_days (not closed)
        return sa.and_(Conversation.status != "closed", Conversation.inactive_since.is_not(None))
    if f.status == "declined":  # declined with a reason (and closed), until reactivated
        return Conversation.declined_at.is_not(None)
    if f.status != "all":
        return Conversation.status == f.status
    return None


def _base_conditions(user: User, f: ListFilter, searched: bool = False) -> list:
    """Every condition of the list but the status tab's (a search found visible ones only)."""
    conds = []
    visible = visible_inbox_ids(user)
    if visible is not None and not searched:
        conds.append(Conversation.inbox_id.in_(visible))
    if f.inbox:
        conds.append(Conversation.inbox_id == f.inbox)
    if f.channel:
        conds.append(
            Conversation.inbox_id.in_(sa.select(Inbox.id).where(Inbox.channel == f.channel))
        )
    for key in f.labels:  # one condition per label: all of them (AND)
        conds.append(
            Conversation.id.in_(
                sa.select(conversation_labels.c.conversation_id)
                .join(Label, Label.id == conversation_labels.c.label_id)
                .where(Label.name_key == key)
            )
        )
    return conds


def _assignee_condition(user: User, f: ListFilter):
    if f.assignee == "me":
        return Conversation.assignee_id == user.id
    if f.assignee == "unassigned":
        return Conversation.assignee_id.is_(None)
    if f.assignee.isdigit():
        return Conversation.assignee_id == int(f.assignee)
    return None


def _encode_cursor(values: list) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != 2:
            raise ValueError
        return values
    except (ValueError, json.JSONDecodeError) as exc:
        raise BadFilter("cursor is not valid") from exc


def _sort_spec(sort: str):
    """(column, descending) for each sort; ``id`` breaks ties in the same direction."""
    return {
        "last_activity": (Conversation.last_activity_at, True),
        "waiting_longest": (Conversation.waiting_since, False),
        "window_expiring": (Conversation.window_expires_at, False),
        "created": (Conversation.id, True),
    }[sort]


def _keyset(sort: str, cursor: list):
    """Rows after the cursor; NULLs sort last in ascending sorts."""
    col, desc = _sort_spec(sort)
    value, last_id = cursor
    if sort == "created":
        return Conversation.id < last_id
    if desc:
        v = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return sa.or_(col < v, sa.and_(col == v, Conversation.id < last_id))
    if value is None:
        return sa.and_(col.is_(None), Conversation.id > last_id)
    v = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return sa.or_(col > v, sa.and_(col == v, Conversation.id > last_id), col.is_(None))


def list_conversations(session: Session, user: User, f: ListFilter) -> dict:
    """One page of conversations plus ``{"mine", "unassigned", "all"}`` counts.

    A search (``q``) also gives ``counts.by_status`` (where the matches are, whatever
    the tab), ``counts.capped`` and, per listed conversation, the message that
    matched (``matches``: conversation id -> ``{"message_id", "snippet"}``).
    """
    conds = _base_conditions(user, f, searched=bool(f.q))
    status = _status_condition(f)
    assignee = _assignee_condition(user, f)
    query = found = None
    if f.q:  # the search found its conversations (visible ones): the rest is read by id
        query = search.Query.parse(f.q, f.region)
        found = search.find(session, query, visible_inbox_ids(user))
        status, assignee = _likely(session, status), _likely(session, assignee)
        conds = [_likely(session, c) for c in conds]
        conds.append(search.id_in(session, Conversation.id, found.ids))
    tab_conds = conds + ([status] if status is not None else [])
    page_conds = tab_conds + ([assignee] if assignee is not None else [])
    if f.cursor:
        try:
            page_conds.append(_keyset(f.sort, _decode_cursor(f.cursor)))
        except (TypeError, ValueError, AttributeError) as exc:
            raise BadFilter("cursor is not valid") from exc
    col, desc = _sort_spec(f.sort)
    rows = _page(session, f, page_conds, col, desc)
    next_cursor = None
    if len(rows) > f.limit:
        rows = rows[: f.limit]
        last = rows[-1]
        raw = getattr(last, col.key)
        value = last.id if f.sort == "created" else (aware(raw).isoformat() if raw else None)
        next_cursor = _encode_cursor([value, last.id])
    if found is not None:
        counts = _search_counts(session, user, f, conds, tab_conds)
        counts["capped"] = found.capped
        matches = search.matches(session, query, found, [c.id for c in rows])
        return {"items": rows, "counts": counts, "next_cursor": next_cursor, "matches": matches}
    counts = maintained_counts(session, user, f)
    if counts is None:
        counts = count_conversations(session, user, tab_conds)
    return {"items": rows, "counts": counts, "next_cursor": next_cursor, "matches": {}}


def _likely(session: Session, cond):
    """SQLite: ``cond`` holds for most rows, so the planner reads the search's ids first."""
    if cond is None or session.get_bind().dialect.name != "sqlite":
        return cond
    return sa.func.likelihood(cond, sa.literal_column("0.99"), type_=sa.Boolean)


def _search_counts(session: Session, user: User, f: ListFilter, conds, tab_conds) -> dict:
    """The three counts of the tab and ``by_status``, for the same search, in one query."""
    rows = session.execute(
        sa.select(
            Conversation.status,
            sa.func.count(),
            sa.func.coalesce(
                sa.func.sum(sa.case((Conversation.assignee_id == user.id, 1), else_=0)), 0
            ),
            sa.func.coalesce(
                sa.func.sum(sa.case((Conversation.assignee_id.is_(None), 1), else_=0)), 0
            ),
        )
        .where(*conds)
        .group_by(Conversation.status)
    ).all()
    by_status = dict.fromkeys(STATUSES, 0)
    tab = {"all": 0, "mine": 0, "unassigned": 0}
    for status, n, mine, unassigned in rows:
        by_status[status] = int(n)
        if f.status in (status, "all"):
            tab["all"] += int(n)
            tab["mine"] += int(mine)
            tab["unassigned"] += int(unassigned)
    if f.status not in (*STATUSES, "all"):  # inactive, declined: a tab of its own
        tab = count_conversations(session, user, tab_conds)
    return {**tab, "by_status": by_status}


def _page(session: Session, f: ListFilter, conds: list, col, desc: bool) -> list[Conversation]:
    """One page in one query, using an index for every sort.

    Ascending sorts put conversations without a value (nothing waiting, no
    window) last. Both databases sort NULLs differently and neither uses an
    index for ``col IS NULL`` in ORDER BY, so the ids come from two indexed
    sub-selects (with a value, without) and only those few rows are sorted.
    """
    base = sa.select(Conversation)
    if f.sort == "created":
        q = base.where(*conds).order_by(Conversation.id.desc())
    elif desc:
        q = base.where(*conds).order_by(col.desc(), Conversation.id.desc())
    else:
        with_value = (
            sa.select(Conversation.id)
            .where(*conds, col.is_not(None))
            .order_by(col.asc(), Conversation.id.asc())
            .limit(f.limit + 1)
            .subquery()
        )
        without = (
            sa.select(Conversation.id)
            .where(*conds, col.is_(None))
            .order_by(Conversation.id.asc())
            .limit(f.limit + 1)
            .subquery()
        )
        ids = sa.union_all(sa.select(with_value.c.id), sa.select(without.c.id)).subquery()
        q = base.where(Conversation.id.in_(sa.select(ids.c.id))).order_by(
            col.is_(None), col.asc(), Conversation.id.asc()
        )
    return list(session.scalars(q.limit(f.limit + 1)).unique())


def maintained_counts(session: Session, user: User, f: ListFilter) -> dict | None:
    """The three counts from the trigger-maintained table (None when a filter needs a live count)."""
    if f.q or f.labels or f.status not in ("open", "pending", "snoozed", "closed", "all"):
        return None
    cc = ConversationCount
    q = sa.select(
        sa.func.coalesce(sa.func.sum(cc.n), 0),
        sa.func.coalesce(sa.func.sum(sa.case((cc.assignee_id == user.id, cc.n), else_=0)), 0),
        sa.func.coalesce(sa.func.sum(sa.case((cc.assignee_id == 0, cc.n), else_=0)), 0),
    )
    if f.status != "all":
        q = q.where(cc.status == f.status)
    visible = visible_inbox_ids(user)
    if visible is not None:
        q = q.where(cc.inbox_id.in_(visible))
    if f.inbox:
        q = q.where(cc.inbox_id == f.inbox)
    if f.channel:
        q = q.where(cc.inbox_id.in_(sa.select(Inbox.id).where(Inbox.channel == f.channel)))
    row = session.execute(q).one()
    return {"all": int(row[0]), "mine": int(row[1]), "unassigned": int(row[2])}


def count_conversations(session: Session, user: User, conds: list) -> dict:
    """The three counts in one query, counted live (search and derived filters)."""
    row = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(
                sa.func.sum(sa.case((Conversation.assignee_id == user.id, 1), else_=0)), 0
            ),
            sa.func.coalesce(
                sa.func.sum(sa.case((Conversation.assignee_id.is_(None), 1), else_=0)), 0
            ),
        ).where(*conds)
    ).one()
    return {"all": int(row[0]), "mine": int(row[1]), "unassigned": int(row[2])}
