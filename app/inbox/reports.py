"""Reports for team leads, read from the facts recorded as things happened.

:mod:`app.inbox.report_facts` keeps ``report_events`` (started, closed, reopened,
assigned) and ``report_waits`` (each customer's wait for an answer); messages are
counted from their own table. Everything is stored in UTC; a report takes inclusive
local dates and a time zone (:class:`Period`), counts an event on the local day (and
weekday and hour) it happened, a first response on the day it was given and a missed
reply window on the day it closed. Counts are grouped by 15-minute slots in the
database and placed in local days and hours here, so any time zone (daylight saving
included) costs the same. Medians and 90th percentiles are of whole seconds; response
times are counted within the inbox's business hours where it has them.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import channels
from app.channels.badges import Wait
from app.clock import aware
from app.db import dialect
from app.models import Inbox, Message, ReportEvent, ReportWait, User
from app.models.report import SLOT, slot_of

MAX_DAYS = 400  # a year and a little


class InvalidPeriod(ValueError):
    """Dates that make no period (``to`` before ``from``, too long, unknown time zone)."""


@dataclass(frozen=True)
class Period:
    """Inclusive local dates in a time zone, and the filters of a report."""

    start: date
    end: date
    tz: ZoneInfo
    inbox_ids: tuple[int, ...] | None = None  # None: every inbox
    agent_id: int | None = None

    @property
    def days(self) -> int:
        """How many local days the period has."""
        return (self.end - self.start).days + 1

    @property
    def lo(self) -> datetime:
        """The period's first instant (local midnight), aware."""
        return datetime.combine(self.start, time(), self.tz)

    @property
    def hi(self) -> datetime:
        """The instant after the period (the next local midnight), aware."""
        return datetime.combine(self.end + timedelta(days=1), time(), self.tz)

    def previous(self) -> Period:
        """The period of as many days just before this one."""
        return replace(
            self, start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1)
        )


def make_period(
    session: Session,
    start: date,
    end: date,
    tz: str,
    inbox_id: int | None = None,
    channel: str | None = None,
    agent_id: int | None = None,
) -> Period:
    """A :class:`Period`; ``channel`` narrows it to that channel's inboxes."""
    try:
        zone = ZoneInfo(tz or "UTC")
    except (KeyError, ValueError) as exc:
        raise InvalidPeriod(f"Unknown time zone {tz!r}.") from exc
    if end < start:
        raise InvalidPeriod("to is before from.")
    if (end - start).days >= MAX_DAYS:
        raise InvalidPeriod(f"A report covers at most {MAX_DAYS} days.")
    ids = None
    if inbox_id is not None or channel:
        query = sa.select(Inbox.id)
        if inbox_id is not None:
            query = query.where(Inbox.id == inbox_id)
        if channel:
            query = query.where(Inbox.channel == channel)
        ids = tuple(session.scalars(query))
    return Period(start, end, zone, ids, agent_id)


# --------------------------------------------------------------------------- figures


def summary(values: list[int]) -> dict:
    """``{median, p90, count}`` of whole seconds (p90: nearest rank); None when empty."""
    if not values:
        return {"median": None, "p90": None, "count": 0}
    ordered = sorted(values)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return {"median": int(statistics.median(ordered)), "p90": int(p90), "count": len(ordered)}


def _change(now_value, before_value) -> float | None:
    """The relative change against the previous period (None when it had nothing)."""
    if now_value is None or not before_value:
        return None
    return round((now_value - before_value) / before_value, 4)


class _Local:
    """Local day, weekday and hour of 15-minute slots, computed once per slot."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._cache: dict[int, tuple[date, int, int]] = {}

    def __call__(self, slot: int) -> tuple[date, int, int]:
        hit = self._cache.get(slot)
        if hit is None:
            local = datetime.fromtimestamp(slot * SLOT, self.tz)
            hit = self._cache[slot] = (local.date(), local.weekday(), local.hour)
        return hit

    def day(self, at: datetime) -> date:
        """The local date of an instant."""
        return at.astimezone(self.tz).date() if at.tzinfo else self(slot_of(at))[0]


def _message_slot(session: Session):
    """The 15-minute slot of ``messages.created_at`` (stored as naive UTC), in SQL."""
    if dialect(session) == "postgresql":
        return sa.cast(sa.func.floor(sa.extract("epoch", Message.created_at) / SLOT), sa.Integer)
    return sa.cast(sa.func.strftime("%s", Message.created_at), sa.Integer) / SLOT


def _event_counts(session: Session, p: Period) -> list[tuple[str, int, int]]:
    """(kind, slot, count) of conversation events in the period."""
    query = (
        sa.select(ReportEvent.kind, ReportEvent.slot, sa.func.count())
        .where(
            ReportEvent.slot >= slot_of(p.lo),
            ReportEvent.slot < slot_of(p.hi),
            ReportEvent.kind.in_(("new", "closed", "reopened")),
        )
        .group_by(ReportEvent.kind, ReportEvent.slot)
    )
    if p.inbox_ids is not None:
        query = query.where(ReportEvent.inbox_id.in_(p.inbox_ids))
    if p.agent_id is not None:
        query = query.where(ReportEvent.user_id == p.agent_id)
    return list(session.execute(query))


def _message_counts(session: Session, p: Period) -> list[tuple[str, int, int]]:
    """(direction, slot, count) of customers' messages and replies in the period."""
    slot = _message_slot(session).label("slot")
    query = (
        sa.select(Message.direction, slot, sa.func.count())
        .where(
            Message.created_at >= p.lo,
            Message.created_at < p.hi,
            Message.direction.in_(("inbound", "outbound")),
        )
        .group_by(Message.direction, slot)
    )
    if p.inbox_ids is not None:
        query = query.where(Message.inbox_id.in_(p.inbox_ids))
    if p.agent_id is not None:
        query = query.where(Message.sender_user_id == p.agent_id)
    return [(d, int(slot), n) for d, slot, n in session.execute(query)]


def _waits(session: Session, p: Period, column, *conds) -> sa.Select:
    query = sa.select(ReportWait).where(column >= p.lo, column < p.hi, *conds)
    if p.inbox_ids is not None:
        query = query.where(ReportWait.inbox_id.in_(p.inbox_ids))
    if p.agent_id is not None:
        query = query.where(ReportWait.agent_id == p.agent_id)
    return query


def _first_responses(session: Session, p: Period) -> list[tuple[datetime, int, int, int | None]]:
    """(answered_at, seconds within hours, inbox, agent) of first responses in the period."""
    query = _waits(session, p, ReportWait.answered_at, ReportWait.first.is_(True))
    query = query.with_only_columns(
        ReportWait.answered_at, ReportWait.business_s, ReportWait.inbox_id, ReportWait.agent_id
    )
    return [(a, s or 0, i, u) for a, s, i, u in session.execute(query)]


def _resolutions(session: Session, p: Period) -> list[tuple[int, int, int | None]]:
    """(seconds, inbox, agent) of closes in the period."""
    query = sa.select(ReportEvent.seconds, ReportEvent.inbox_id, ReportEvent.user_id).where(
        ReportEvent.kind == "closed",
        ReportEvent.slot >= slot_of(p.lo),
        ReportEvent.slot < slot_of(p.hi),
    )
    if p.inbox_ids is not None:
        query = query.where(ReportEvent.inbox_id.in_(p.inbox_ids))
    if p.agent_id is not None:
        query = query.where(ReportEvent.user_id == p.agent_id)
    return [(s or 0, i, u) for s, i, u in session.execute(query)]


def _count(session: Session, query: sa.Select) -> int:
    return session.scalar(query.with_only_columns(sa.func.count()).order_by(None)) or 0


def _targets(session: Session, p: Period) -> dict:
    """Missed reply windows, response-target breaches, and the share of targets met."""
    missed = _count(session, _waits(session, p, ReportWait.window_missed_at))
    breaches = _count(session, _waits(session, p, ReportWait.breached_at))
    met = _count(
        session, _waits(session, p, ReportWait.answered_at, ReportWait.breached_at.is_(None))
    )
    rate = met / (met + breaches) if met + breaches else None
    return {
        "reply_windows_missed": missed,
        "response_breaches": breaches,
        "response_met": met,
        "response_met_rate": None if rate is None else round(rate, 4),
    }


def _headline(session: Session, p: Period, local: _Local) -> tuple[dict, dict]:
    """The period's totals, and what the day and hour rollups need."""
    events = _event_counts(session, p)
    messages = _message_counts(session, p)
    firsts = _first_responses(session, p)
    closes = _resolutions(session, p)
    totals = defaultdict(int)
    for kind, _slot, n in events + messages:
        totals[kind] += n
    head = {
        "conversations": {k: totals[k] for k in ("new", "closed", "reopened")},
        "messages": {k: totals[k] for k in ("inbound", "outbound")},
        "first_response_s": summary([s for _a, s, _i, _u in firsts]),
        "resolution_s": summary([s for s, _i, _u in closes]),
        **_targets(session, p),
    }
    return head, {"events": events, "messages": messages, "firsts": firsts, "closes": closes}


def _names(session: Session, model, ids) -> dict[int, object]:
    ids = [i for i in set(ids) if i is not None]
    return (
        {row.id: row for row in session.scalars(sa.select(model).where(model.id.in_(ids)))}
        if ids
        else {}
    )


def _breakdown(session: Session, firsts: list, closes: list) -> dict:
    """First response and resolution (median, p90) by channel, inbox and agent."""
    inboxes = _names(session, Inbox, [i for *_x, i, _u in firsts] + [i for _s, i, _u in closes])
    users = _names(session, User, [u for *_x, u in firsts] + [u for _s, _i, u in closes])
    out = {}
    for name, rows in (
        ("first_response_s", [(s, i, u) for _a, s, i, u in firsts]),
        ("resolution_s", closes),
    ):
        groups: dict[str, dict] = {
            "channel": defaultdict(list),
            "inbox": defaultdict(list),
            "agent": defaultdict(list),
        }
        for s, i, u in rows:
            inbox = inboxes.get(i)
            if inbox is not None:
                groups["channel"][inbox.channel].append(s)
                groups["inbox"][i].append(s)
            groups["agent"][u].append(s)
        out[name] = {
            "channel": [{"channel": k, **summary(v)} for k, v in sorted(groups["channel"].items())],
            "inbox": [
                {"inbox": inboxes[k].ref(), **summary(v)}
                for k, v in sorted(groups["inbox"].items())
            ],
            "agent": [
                {"user": {"id": k, "name": users[k].name} if k in users else None, **summary(v)}
                for k, v in sorted(
                    groups["agent"].items(), key=lambda kv: (kv[0] is None, kv[0] or 0)
                )
            ],
        }
    return out


def overview(session: Session, p: Period) -> dict:
    """The overview report (``GET /api/v1/reports/overview``)."""
    local = _Local(p.tz)
    head, parts = _headline(session, p, local)
    before, _ = _headline(session, p.previous(), _Local(p.tz))
    days = [p.start + timedelta(days=n) for n in range(p.days)]
    by_day = {d: defaultdict(int) for d in days}
    by_hour = [[0] * 24 for _ in range(7)]
    for kind, slot, n in parts["events"] + parts["messages"]:
        day, weekday, hour = local(slot)
        if day in by_day:
            by_day[day][kind] += n
        if kind == "new":
            by_hour[weekday][hour] += n
    day_firsts: dict[date, list[int]] = defaultdict(list)
    for answered_at, s, _i, _u in parts["firsts"]:
        day_firsts[local(slot_of(answered_at))[0]].append(s)
    distribution = _distribution([s for _a, s, _i, _u in parts["firsts"]])
    return {
        **head,
        "period": {"from": p.start.isoformat(), "to": p.end.isoformat(), "tz": p.tz.key},
        "previous": {
            "from": p.previous().start.isoformat(),
            "to": p.previous().end.isoformat(),
            **before,
        },
        "change": {
            "new": _change(head["conversations"]["new"], before["conversations"]["new"]),
            "closed": _change(head["conversations"]["closed"], before["conversations"]["closed"]),
            "inbound": _change(head["messages"]["inbound"], before["messages"]["inbound"]),
            "first_response_median_s": _change(
                head["first_response_s"]["median"], before["first_response_s"]["median"]
            ),
            "resolution_median_s": _change(
                head["resolution_s"]["median"], before["resolution_s"]["median"]
            ),
            "reply_windows_missed": _change(
                head["reply_windows_missed"], before["reply_windows_missed"]
            ),
            "response_breaches": _change(head["response_breaches"], before["response_breaches"]),
        },
        "by_day": [
            {
                "date": d.isoformat(),
                "new": by_day[d]["new"],
                "closed": by_day[d]["closed"],
                "reopened": by_day[d]["reopened"],
                "inbound": by_day[d]["inbound"],
                "outbound": by_day[d]["outbound"],
                "first_response_median_s": summary(day_firsts[d])["median"],
            }
            for d in days
        ],
        "by_hour": by_hour,
        "first_response_distribution": distribution,
        "breakdown": _breakdown(session, parts["firsts"], parts["closes"]),
    }


#: Upper bounds (seconds) of the response-time distribution's buckets; the last is open.
BUCKETS = (300, 900, 3600, 4 * 3600, 24 * 3600)


def _distribution(values: list[int]) -> list[dict]:
    """How many first responses fell in each bucket: ``[{up_to_s, count}]`` (last: None)."""
    counts = [0] * (len(BUCKETS) + 1)
    for s in values:
        counts[next((n for n, b in enumerate(BUCKETS) if s <= b), len(BUCKETS))] += 1
    return [
        {"up_to_s": BUCKETS[n] if n < len(BUCKETS) else None, "count": c}
        for n, c in enumerate(counts)
    ]


# --------------------------------------------------------------------------- agents


def agents(session: Session, p: Period) -> list[dict]:
    """Per agent: assigned, closed, replies, first response and resolution times."""
    lo, hi = slot_of(p.lo), slot_of(p.hi)
    events = sa.select(ReportEvent.user_id, ReportEvent.kind, sa.func.count()).where(
        ReportEvent.slot >= lo,
        ReportEvent.slot < hi,
        ReportEvent.kind.in_(("assigned", "closed")),
        ReportEvent.user_id.is_not(None),
    )
    replies = sa.select(Message.sender_user_id, sa.func.count()).where(
        Message.created_at >= p.lo,
        Message.created_at < p.hi,
        Message.direction == "outbound",
        Message.automated.is_(False),
        Message.sender_user_id.is_not(None),
    )
    if p.inbox_ids is not None:
        events = events.where(ReportEvent.inbox_id.in_(p.inbox_ids))
        replies = replies.where(Message.inbox_id.in_(p.inbox_ids))
    counts: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    for user_id, kind, n in session.execute(events.group_by(ReportEvent.user_id, ReportEvent.kind)):
        counts[user_id][kind] = n
    for user_id, n in session.execute(replies.group_by(Message.sender_user_id)):
        counts[user_id]["replies"] = n
    firsts = defaultdict(list)
    for _a, s, _i, u in _first_responses(session, replace(p, agent_id=None)):
        if u is not None:
            firsts[u].append(s)
    closes = defaultdict(list)
    for s, _i, u in _resolutions(session, replace(p, agent_id=None)):
        if u is not None:
            closes[u].append(s)
    people = session.scalars(
        sa.select(User)
        .where(sa.or_(User.active.is_(True), User.id.in_(list(counts) or [0])))
        .order_by(User.name, User.id)
    )
    rows = []
    for user in people:
        if p.agent_id is not None and user.id != p.agent_id:
            continue
        c = counts.get(user.id, {})
        rows.append(
            {
                "user": {"id": user.id, "name": user.name},
                "assigned": c.get("assigned", 0),
                "closed": c.get("closed", 0),
                "replies": c.get("replies", 0),
                "first_response_s": summary(firsts[user.id]),
                "resolution_s": summary(closes[user.id]),
            }
        )
    return rows


# --------------------------------------------------------------------------- badges


def badges(session: Session, at: datetime, inbox_ids: tuple[int, ...] | None = None) -> list[dict]:
    """Per inbox whose platform judges response times: where it stands, as of ``at``."""
    inboxes = session.scalars(
        sa.select(Inbox).where(Inbox.active.is_(True)).order_by(Inbox.name, Inbox.id)
    )
    out = []
    for inbox in inboxes:
        rule = _badge_rule(inbox)
        if rule is None or (inbox_ids is not None and inbox.id not in inbox_ids):
            continue
        rows = session.execute(
            sa.select(
                ReportWait.started_at,
                ReportWait.answered_at,
                ReportWait.wait_s,
                ReportWait.business_s,
            ).where(
                ReportWait.inbox_id == inbox.id,
                ReportWait.started_at >= at - rule.period,
                ReportWait.started_at <= at,
            )
        )
        waits = [Wait(aware(s), aware(a), w, b) for s, a, w, b in rows]
        out.append({"inbox": inbox.ref(), **rule.evaluate(waits, at)})
    return out


def _badge_rule(inbox: Inbox):
    try:
        return channels.get(inbox.channel).badge
    except KeyError:
        return None
