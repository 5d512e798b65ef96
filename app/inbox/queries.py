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
from sqlalchemy.orm import Session, aliased

from app.clock import aware, now
from app.inbox import window_sort
from app.inbox.labels import name_key
from app.models import (
    Contact,
    ContactIdentity,
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

    @classmethod
    def from_args(cls, args) -> ListFilter:
        """Parse and validate query-string arguments."""
        f = cls(
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


def _base_conditions(user: User, f: ListFilter, dialect: str) -> list:
    conds = []
    visible = visible_inbox_ids(user)
    if visible is not None:
        conds.append(Conversation.inbox_id.in_(visible))
    if f.status == "inactive":  # no interaction for the inbox's inactive_days (not closed)
        conds += [Conversation.status != "closed", Conversation.inactive_since.is_not(None)]
    elif f.status == "declined":  # declined with a reason (and closed), until reactivated
        conds.append(Conversation.declined_at.is_not(None))
    elif f.status != "all":
        conds.append(Conversation.status == f.status)
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
    if f.q:
        conds.append(_search_condition(f.q, dialect))
    return conds


def _search_condition(text: str, dialect: str):
    """Conversations whose contact name, identity, subject or last message holds ``text``.

    Any case, anywhere; "%" and "_" are matched as typed (order_1234, 50%). On
    PostgreSQL each field is searched on its own so that each can use its trigram
    index (migration 0007), and the matching ids are united: an OR across the
    tables could only be checked row by row, reading every conversation. A text
    shorter than a trigram cannot use those indexes (and matches most rows): it,
    and any text on SQLite, which has no such index, is checked in one pass.
    """

    def has(col):
        return col.icontains(text, autoescape=True)

    if dialect == "postgresql" and len(text) >= 3:
        c = aliased(Conversation)  # not correlated with the listed conversation
        matching = sa.union_all(
            sa.select(c.id).where(has(c.subject)),
            sa.select(c.id).where(has(c.last_message_body)),
            sa.select(c.id).join(Contact, Contact.id == c.contact_id).where(has(Contact.name)),
            sa.select(c.id)
            .join(ContactIdentity, ContactIdentity.contact_id == c.contact_id)
            .where(has(ContactIdentity.external_id)),
        )
        return Conversation.id.in_(matching)
    return sa.or_(
        Conversation.contact_id.in_(sa.select(Contact.id).where(has(Contact.name))),
        Conversation.contact_id.in_(
            sa.select(ContactIdentity.contact_id).where(has(ContactIdentity.external_id))
        ),
        has(Conversation.subject),
        has(Conversation.last_message_body),
    )


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
    """One page of conversations plus ``{"mine", "unassigned", "all"}`` counts."""
    dialect = session.get_bind().dialect.name
    conds = _base_conditions(user, f, dialect)
    counts = None
    if f.q and dialect == "sqlite":
        conds, counts = _few_matches(session, user, conds)
    assignee = _assignee_condition(user, f)
    page_conds = conds + ([assignee] if assignee is not None else [])
    if f.sort == "window_expiring":  # its order depends on the time: see window_sort
        rows, last = _window_page(session, f, page_conds)
        return _with_counts(session, user, f, conds, counts, rows, last)
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
        next_cursor = [value, last.id]
    return _with_counts(session, user, f, conds, counts, rows, next_cursor)


def _window_page(session: Session, f: ListFilter, conds: list) -> tuple[list, list | None]:
    """A page of the "window closing soonest" sort, read at the current time."""
    cursor = None
    if f.cursor:
        try:
            cursor = window_sort.parse_cursor(_decode_cursor(f.cursor))
        except (TypeError, ValueError) as exc:
            raise BadFilter("cursor is not valid") from exc
    return window_sort.page(session, conds, f.limit, cursor, now())


def _with_counts(session, user, f, conds, counts, rows, last) -> dict:
    """The list's answer: the page, the next page's cursor and the three counts."""
    if counts is None:
        counts = maintained_counts(session, user, f)
    if counts is None:
        counts = count_conversations(session, user, conds)
    next_cursor = _encode_cursor(last) if last else None
    return {"items": rows, "counts": counts, "next_cursor": next_cursor}


SEARCH_FEW = 1000  # SQLite: up to this many matches, a search's page and counts come from them


def _few_matches(session: Session, user: User, conds: list) -> tuple[list, dict | None]:
    """SQLite: a search matching few conversations -> (``id IN`` those, their counts).

    Without an index for text anywhere in a field, the page query walked the sort
    index and tested every conversation for the one that matched, then the
    counts read them all again (a quarter of a second at 100k conversations).
    One pass, stopped as soon as there are more than ``SEARCH_FEW`` matches, finds
    them all instead when they are few (what looking a customer up gives); the page
    is then read by id and the counts are theirs. A common word stops the pass
    early and keeps the usual queries, which find a page of it quickly.
    """
    # one pass in table order: told that the conditions hold for most rows, SQLite does
    # not fetch the conversations one by one through the inbox or status index
    scan = sa.func.likelihood(sa.and_(*conds), sa.literal_column("0.99"), type_=sa.Boolean)
    matched = session.execute(
        sa.select(Conversation.id, Conversation.assignee_id).where(scan).limit(SEARCH_FEW + 1)
    ).all()
    if len(matched) > SEARCH_FEW:
        return conds, None
    counts = {
        "all": len(matched),
        "mine": sum(1 for row in matched if row.assignee_id == user.id),
        "unassigned": sum(1 for row in matched if row.assignee_id is None),
    }
    return [Conversation.id.in_([row.id for row in matched])], counts


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
