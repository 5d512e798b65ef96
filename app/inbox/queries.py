"""The conversation list: filters, sorts, keyset pagination and the counts.

One query for the page (inbox, contact and assignee joined), one for the
contacts' identities, one for the conversations' labels, one for the counts
(the three assignee counts and the per-status counts of the tabs, grouped by
status): the list stays within a fixed number of queries whatever the page size.
"""

from __future__ import annotations

import base64
import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Session

from app import prepared
from app.clock import aware, now
from app.inbox import search, window_sort
from app.inbox.labels import name_key
from app.models import (
    STATUSES,
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
STATUS_FILTERS = (*STATUSES, "all", "inactive", "declined")
AUTOMATED = ("show", "hide")  # conversations only machines wrote in (auto-replies, newsletters)
MAX_LIMIT = 100
MAX_LABELS = 10  # label filters of one list request (each one is a condition)


#: How a page loads its conversations. A list shows no inbox credentials or health, no
#: contact notes or provider profiles, and of the assignee only the name: those columns
#: (JSON decoded for every row) stay unread, and load on access should anything ask.
LISTED = (
    orm.joinedload(Conversation.inbox, innerjoin=True).load_only(
        Inbox.id, Inbox.channel, Inbox.name, Inbox.settings
    ),
    orm.defaultload(Conversation.contact).defer(Contact.notes).defer(Contact.attributes),
    orm.defaultload(Conversation.contact)
    .joinedload(Contact.identities)
    .defer(ContactIdentity.data)
    .defer(ContactIdentity.profile_fetched_at),
    orm.joinedload(Conversation.labels),
    orm.joinedload(Conversation.assignee).load_only(User.id, User.name, User.active),
)


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
    automated: str = "show"  # hide: leave out conversations only machines wrote in
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
            automated=(args.get("automated") or "show").lower(),
        )
        given = args.getlist("label") if hasattr(args, "getlist") else [args.get("label")]
        keys = [name_key(str(n)) for n in given if n and str(n).strip()]
        f.labels = tuple(dict.fromkeys(keys))
        if len(f.labels) > MAX_LABELS:
            raise BadFilter(f"at most {MAX_LABELS} label filters")
        if f.status not in STATUS_FILTERS:
            raise BadFilter(f"status must be one of {', '.join(STATUS_FILTERS)}")
        if f.automated not in AUTOMATED:
            raise BadFilter("automated must be show or hide")
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
    if f.automated == "hide":
        conds.append(Conversation.automated.is_(False))
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
    """One page of conversations plus ``{"mine", "unassigned", "all", "by_status"}`` counts.

    ``by_status`` counts each status for the same filter and assignee choice (the tabs).
    A search (``q``) also gives ``counts.capped`` and, per listed conversation, the
    message that matched (``matches``: conversation id -> ``{"message_id", "snippet"}``).
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
    if f.sort == "window_expiring":  # its order depends on the time: see window_sort
        rows, last = _window_page(session, f, page_conds)
        return _answer(session, user, f, (conds, tab_conds), rows, last, query, found)
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
    return _answer(session, user, f, (conds, tab_conds), rows, next_cursor, query, found)


def _window_page(session: Session, f: ListFilter, conds: list) -> tuple[list, list | None]:
    """A page of the "window closing soonest" sort, read at the current time."""
    cursor = None
    if f.cursor:
        try:
            cursor = window_sort.parse_cursor(_decode_cursor(f.cursor))
        except (TypeError, ValueError) as exc:
            raise BadFilter("cursor is not valid") from exc
    return window_sort.page(session, conds, f.limit, cursor, now(), LISTED)


def _answer(session, user, f, conds_pair, rows, last, query, found) -> dict:
    """The list's answer: the page, the next page's cursor, the counts and, for a search,
    the message each listed conversation was found by."""
    counts = _counts(session, user, f, *conds_pair)
    matches = {}
    if found is not None:
        counts["capped"] = found.capped
        matches = search.matches(session, query, found, [c.id for c in rows])
    next_cursor = _encode_cursor(last) if last else None
    return {"items": rows, "counts": counts, "next_cursor": next_cursor, "matches": matches}


def _counts(session: Session, user: User, f: ListFilter, conds: list, tab_conds: list) -> dict:
    """The three assignee counts of the tab and ``by_status`` (the list's assignee choice)
    for ``conds`` (the filter without the status; ``tab_conds`` with it)."""
    grouped = maintained_by_status(session, user, f)
    if grouped is None:
        grouped = count_by_status(session, user, f, conds)
    if f.status in STATUSES:
        counts = {k: grouped[f.status][k] for k in ("all", "mine", "unassigned")}
    elif f.status == "all":
        counts = {k: sum(g[k] for g in grouped.values()) for k in ("all", "mine", "unassigned")}
    else:  # inactive, declined: not a status of the grouped counts
        counts = count_conversations(session, user, tab_conds)
    return {**counts, "by_status": {s: grouped[s]["chosen"] for s in STATUSES}}


def _likely(session: Session, cond):
    """SQLite: ``cond`` holds for most rows, so the planner reads the search's ids first."""
    if cond is None or session.get_bind().dialect.name != "sqlite":
        return cond
    return sa.func.likelihood(cond, sa.literal_column("0.99"), type_=sa.Boolean)


def _page(session: Session, f: ListFilter, conds: list, col, desc: bool) -> list[Conversation]:
    """One page in one query, using an index for every sort.

    The page's ids are chosen first, from the conversations alone; only those rows are
    then joined to their inbox, contact and assignee (a search may have found a thousand).
    Ascending sorts put conversations without a value (nothing waiting, no window)
    last. Both databases sort NULLs differently and neither uses an index for
    ``col IS NULL`` in ORDER BY, so the ids come from two indexed sub-selects (with a
    value, without) and only those few rows are sorted.
    """
    ids = sa.select(Conversation.id).where(*conds).limit(prepared.limit(f.limit + 1))
    if f.sort == "created":
        order = (Conversation.id.desc(),)
    elif desc:
        order = (col.desc(), Conversation.id.desc())
    else:
        with_value = ids.where(col.is_not(None)).order_by(col.asc(), Conversation.id.asc())
        without = ids.where(col.is_(None)).order_by(Conversation.id.asc())
        union = sa.union_all(with_value.subquery().select(), without.subquery().select())
        ids = union.subquery().select()
        order = (col.is_(None), col.asc(), Conversation.id.asc())
    if f.sort == "created" or desc:
        ids = ids.order_by(*order)
    q = sa.select(Conversation).options(*LISTED).where(Conversation.id.in_(ids)).order_by(*order)
    # kept prepared (app.prepared) but for a search, whose ids change with every text
    options = {} if f.q else prepared.PREPARED
    return list(
        session.scalars(q.limit(prepared.limit(f.limit + 1)), execution_options=options).unique()
    )


def unread_conversations(session: Session, user: User) -> int:
    """How many conversations wait unread for ``user``: theirs, or nobody's in their inboxes.

    Not closed, with unread customer messages; what the tab's title and icon count.
    """
    conds = [
        Conversation.status.in_(("open", "pending", "snoozed")),
        sa.or_(Conversation.assignee_id == user.id, Conversation.assignee_id.is_(None)),
        Conversation.unread_count > 0,
    ]
    visible = visible_inbox_ids(user)
    if visible is not None:
        conds.append(Conversation.inbox_id.in_(visible))
    return int(session.scalar(sa.select(sa.func.count()).where(*conds)) or 0)


def _by_status(rows) -> dict[str, dict[str, int]]:
    """``{status: {all, mine, unassigned, chosen}}`` from grouped rows (0 where none)."""
    out = {s: {"all": 0, "mine": 0, "unassigned": 0, "chosen": 0} for s in STATUSES}
    for status, n_all, mine, unassigned, chosen in rows:
        if status in out:
            out[status] = {
                "all": int(n_all or 0),
                "mine": int(mine or 0),
                "unassigned": int(unassigned or 0),
                "chosen": int(chosen or 0),
            }
    return out


def _sum_if(cond, value):
    return sa.func.sum(sa.case((cond, value), else_=0))


def maintained_by_status(session: Session, user: User, f: ListFilter) -> dict | None:
    """Counts per status from the trigger-maintained table, in one grouped query.

    Each status has ``all``, ``mine``, ``unassigned`` and ``chosen`` (the list's
    assignee choice). None when a filter (search, labels, automated) needs a live count.
    """
    if f.q or f.labels or f.automated != "show":
        return None
    cc = ConversationCount
    chosen = {"me": cc.assignee_id == user.id, "unassigned": cc.assignee_id == 0}.get(f.assignee)
    if chosen is None and f.assignee.isdigit():
        chosen = cc.assignee_id == int(f.assignee)
    q = sa.select(
        cc.status,
        sa.func.sum(cc.n),
        _sum_if(cc.assignee_id == user.id, cc.n),
        _sum_if(cc.assignee_id == 0, cc.n),
        sa.func.sum(cc.n) if chosen is None else _sum_if(chosen, cc.n),
    ).group_by(cc.status)
    visible = visible_inbox_ids(user)
    if visible is not None:
        q = q.where(cc.inbox_id.in_(visible))
    if f.inbox:
        q = q.where(cc.inbox_id == f.inbox)
    if f.channel:
        q = q.where(cc.inbox_id.in_(sa.select(Inbox.id).where(Inbox.channel == f.channel)))
    rows = session.execute(q, execution_options=prepared.PREPARED).all()
    return _by_status(rows)


def count_by_status(session: Session, user: User, f: ListFilter, conds: list) -> dict:
    """Counts per status counted live, in one grouped query (``conds`` without the status)."""
    chosen = _assignee_condition(user, f)
    conv = Conversation
    return _by_status(
        session.execute(
            sa.select(
                conv.status,
                sa.func.count(),
                _sum_if(conv.assignee_id == user.id, 1),
                _sum_if(conv.assignee_id.is_(None), 1),
                sa.func.count() if chosen is None else _sum_if(chosen, 1),
            )
            .where(*conds)
            .group_by(conv.status)
        ).all()
    )


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
