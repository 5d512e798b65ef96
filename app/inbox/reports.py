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

import bisect
import functools
import math
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from operator import itemgetter
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.inbox.rows import fetch
from app.models import Inbox, ReportCount, ReportEvent, ReportWait, User
from app.models.report import NOBODY, QUARTERS, SLOT, slot_of

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


def summary(ordered: list[int]) -> dict:
    """``{median, p90, count}`` of whole seconds in ascending order (p90: nearest rank)."""
    if not ordered:
        return {"median": None, "p90": None, "count": 0}
    n = len(ordered)
    p90 = ordered[max(0, math.ceil(0.9 * n) - 1)]
    middle = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return {"median": int(middle), "p90": int(p90), "count": n}


def _ordered(rows: list[tuple]) -> list[int]:
    """The seconds (first column) of ``rows``, ascending."""
    return sorted(map(itemgetter(0), rows))


def _by(rows: list[tuple], column: int) -> dict:
    """``{key: [seconds ascending]}``: the seconds (first column) of ``rows`` by one column.

    Grouped first, then each group sorted: cheaper than sorting a hundred thousand rows.
    """
    out: dict = defaultdict(list)
    for row in rows:
        out[row[column]].append(row[0])
    for values in out.values():
        values.sort()
    return out


def _change(now_value, before_value) -> float | None:
    """The relative change against the previous period (None when it had nothing)."""
    if now_value is None or not before_value:
        return None
    return round((now_value - before_value) / before_value, 4)


def _offsets(p: Period) -> list[tuple[int, int]]:
    """``[(first slot, offset in slots)]``: the zone's UTC offset over the period's slots.

    Read at each local midnight; where it changed between two, the slot it changed at
    is found by halving (daylight saving changes at most a few times a year).
    """
    lo, hi = slot_of(p.lo), slot_of(p.hi)

    def off(slot: int) -> int:
        return int(datetime.fromtimestamp(slot * SLOT, p.tz).utcoffset().total_seconds()) // SLOT

    marks = list(range(lo, hi, 96)) + [hi]
    out = [(lo, off(lo))]
    for a, b in zip(marks, marks[1:], strict=False):
        if off(b) == out[-1][1]:
            continue
        left, right = a, b  # off(left) is the current offset, off(right) the next
        while right - left > 1:
            mid = (left + right) // 2
            if off(mid) == out[-1][1]:
                left = mid
            else:
                right = mid
        out.append((right, off(right)))
    return out


def _local_slot(column, p: Period):
    """SQL: the slot in local wall-clock time (UTC slot + the zone's offset at that slot)."""
    spans = _offsets(p)
    if len(spans) == 1:
        return column + spans[0][1]
    whens = [
        (column < start, column + before)
        for (start, _), (_, before) in zip(spans[1:], spans, strict=False)
    ]
    return sa.case(*whens, else_=column + spans[-1][1])


#: Slots in a local hour and in a local day.
HOUR, DAY = 3600 // SLOT, 86400 // SLOT
EPOCH = date(1970, 1, 1)


def local_hour(index: int) -> tuple[date, int, int]:
    """Local date, weekday and hour of a local hour counted from the epoch."""
    day = EPOCH + timedelta(days=index // 24)
    return day, day.weekday(), index % 24


@functools.cache
def _counted_query(by_inbox: bool) -> sa.Select:
    """The day rows of some kinds, summed over inboxes (96 sums: built once, then bound)."""
    c = ReportCount.__table__.c
    query = (
        sa.select(
            c.kind,
            c.day,
            *(sa.func.coalesce(sa.func.sum(c[f"q{n}"]), 0) for n in range(QUARTERS)),
        )
        .where(
            c.kind.in_(sa.bindparam("kinds", expanding=True)),
            c.user_id == sa.bindparam("user"),
            c.day >= sa.bindparam("first_day"),
            c.day <= sa.bindparam("last_day"),
        )
        .group_by(c.kind, c.day)
    )
    if by_inbox:
        query = query.where(c.inbox_id.in_(sa.bindparam("inboxes", expanding=True)))
    return query


def _counted(
    session: Session, p: Period, kinds: tuple[str, ...], user: int
) -> list[tuple[str, int, list[int]]]:
    """Rows ``(kind, UTC day, [count per slot])`` of :class:`ReportCount` for the period,
    slots outside it at 0."""
    lo, hi = slot_of(p.lo), slot_of(p.hi)
    params = {
        "kinds": list(kinds),
        "user": user,
        "first_day": lo // QUARTERS,
        "last_day": (hi - 1) // QUARTERS,
    }
    if p.inbox_ids is not None:
        params["inboxes"] = list(p.inbox_ids)
    query = _counted_query(p.inbox_ids is not None).params(**params)
    out = []
    for kind, day, *counts in fetch(session, query):
        base = day * QUARTERS
        if base < lo:  # the period starts within this UTC day
            counts[: lo - base] = [0] * (lo - base)
        if base + QUARTERS > hi:
            counts[hi - base :] = [0] * (base + QUARTERS - hi)
        out.append((kind, day, counts))
    return out


def _filtered(query: sa.Select, every_user: bool, by_inbox: bool) -> sa.Select:
    """``query`` on :class:`ReportCount` for the bound ``kinds`` (and ``user``, ``inboxes``)."""
    c = ReportCount.__table__.c
    query = query.where(c.kind.in_(sa.bindparam("kinds", expanding=True)))
    if not every_user:
        query = query.where(c.user_id == sa.bindparam("user"))
    if by_inbox:
        query = query.where(c.inbox_id.in_(sa.bindparam("inboxes", expanding=True)))
    return query


@functools.cache
def _whole_days_query(every_user: bool, by_inbox: bool) -> sa.Select:
    """Per user and kind, the counts of the whole UTC days strictly between two days."""
    c = ReportCount.__table__.c
    total = sa.func.sum(sum(c[f"q{n}"] for n in range(QUARTERS)))
    query = sa.select(c.user_id, c.kind, total).where(
        c.day > sa.bindparam("after"), c.day < sa.bindparam("before")
    )
    return _filtered(query, every_user, by_inbox).group_by(c.user_id, c.kind)


@functools.cache
def _edge_days_query(every_user: bool, by_inbox: bool) -> sa.Select:
    """The slot counts of some UTC days (a period's first and last), row by row."""
    c = ReportCount.__table__.c
    query = sa.select(c.user_id, c.kind, c.day, *(c[f"q{n}"] for n in range(QUARTERS)))
    query = query.where(c.day.in_(sa.bindparam("days", expanding=True)))
    return _filtered(query, every_user, by_inbox)


def _totals(
    session: Session, p: Period, kinds: tuple[str, ...], user: int | None = None
) -> dict[tuple[int, str], int]:
    """``{(user, kind): count}`` over the period, of one ``user`` or (None) of every user:
    whole days summed in SQL, its first and last UTC days slot by slot (where a local
    midnight cuts them)."""
    lo, hi = slot_of(p.lo), slot_of(p.hi)
    first, last = lo // QUARTERS, (hi - 1) // QUARTERS
    params = {"kinds": list(kinds), "after": first, "before": last, "days": [first, last]}
    if user is not None:
        params["user"] = user
    if p.inbox_ids is not None:
        params["inboxes"] = list(p.inbox_ids)
    shape = (user is None, p.inbox_ids is not None)
    out: dict[tuple[int, str], int] = defaultdict(int)
    for user_id, kind, n in session.execute(_whole_days_query(*shape).params(**params)):
        out[(user_id, kind)] += int(n or 0)
    for user_id, kind, day, *quarters in fetch(session, _edge_days_query(*shape).params(**params)):
        base = day * QUARTERS
        n = sum(q for k, q in enumerate(quarters) if lo <= base + k < hi)
        if n:  # a row of the first UTC day may hold only slots before the period
            out[(user_id, kind)] += n
    return out


def _offset_at(spans: list[tuple[int, int]], slot: int) -> int:
    return spans[bisect.bisect_right(spans, (slot, math.inf)) - 1][1]


def _by_local_day(p: Period, rows) -> list[tuple[str, int, int]]:
    """``(kind, local day's first hour index, count)``: :func:`_counted` rows in local days."""
    spans = _offsets(p)
    out: dict[tuple[str, int], int] = defaultdict(int)
    for kind, day, counts in rows:
        base = day * QUARTERS
        first, last = _offset_at(spans, base), _offset_at(spans, base + QUARTERS - 1)
        if first == last:  # one offset all day: the local midnight cuts the day in two
            start = base + first
            cut = DAY - start % DAY
            out[(kind, start // DAY * 24)] += sum(counts[:cut])
            out[(kind, (start // DAY + 1) * 24)] += sum(counts[cut:])
            continue
        for q, n in enumerate(counts):  # the offset changes today (daylight saving)
            if n:
                out[(kind, (base + q + _offset_at(spans, base + q)) // DAY * 24)] += n
    return [(kind, index, n) for (kind, index), n in out.items() if n]


def _by_local_hour(p: Period, rows, kind: str) -> dict[int, int]:
    """``{local hour index: count}`` of one kind of :func:`_counted` rows."""
    spans = _offsets(p)
    out: dict[int, int] = defaultdict(int)
    for _kind, day, counts in rows:
        if _kind != kind:
            continue
        base = day * QUARTERS
        first, last = _offset_at(spans, base), _offset_at(spans, base + QUARTERS - 1)
        for q, n in enumerate(counts):
            if n:
                offset = first if first == last else _offset_at(spans, base + q)
                out[(base + q + offset) // HOUR] += n
    return out


EVENTS = ("new", "closed", "reopened")
MESSAGES = ("inbound", "outbound")


def _kinds(p: Period) -> tuple[tuple[str, ...], int]:
    """The counted kinds of conversation events and messages, and whose: everyone's, or
    with an agent filter that agent's own (``new_by`` ...)."""
    if p.agent_id is None:
        return EVENTS + MESSAGES, NOBODY
    return tuple(f"{k}_by" for k in EVENTS + MESSAGES), p.agent_id


def _day_counts(session: Session, p: Period) -> list[tuple[str, int, list[int]]]:
    """:func:`_counted` rows of conversation events and messages, kinds without ``_by``.

    Read from the counters (:class:`ReportCount`), never the messages.
    """
    kinds, user = _kinds(p)
    return [(k.removesuffix("_by"), d, c) for k, d, c in _counted(session, p, kinds, user)]


def _waits(session: Session, p: Period, column, *conds) -> sa.Select:
    query = sa.select(ReportWait).where(column >= p.lo, column < p.hi, *conds)
    if p.inbox_ids is not None:
        query = query.where(ReportWait.inbox_id.in_(p.inbox_ids))
    if p.agent_id is not None:
        query = query.where(ReportWait.agent_id == p.agent_id)
    return query


def _first_responses(session: Session, p: Period, *keys: str) -> list[tuple]:
    """Rows (seconds within hours, *keys) of the period's first responses; keys are
    ``day`` (local day index), ``inbox`` and ``agent``."""
    W = ReportWait
    named = {
        "day": lambda: _local_slot(W.answered_slot, p) // DAY,
        "inbox": lambda: W.inbox_id,
        "agent": lambda: W.agent_id,
    }
    columns = (sa.func.coalesce(W.business_s, 0), *(named[k]() for k in keys))
    query = sa.select(*columns).where(
        W.first.is_(True), W.answered_slot >= slot_of(p.lo), W.answered_slot < slot_of(p.hi)
    )
    if p.inbox_ids is not None:
        query = query.where(W.inbox_id.in_(p.inbox_ids))
    if p.agent_id is not None:
        query = query.where(W.agent_id == p.agent_id)
    return fetch(session, query)


def _resolutions(session: Session, p: Period, *keys: str) -> list[tuple]:
    """Rows (seconds, *keys) of the period's closes; keys are ``inbox`` and ``agent``."""
    E = ReportEvent
    named = {"inbox": E.inbox_id, "agent": E.user_id}
    columns = (sa.func.coalesce(E.seconds, 0), *(named[k] for k in keys))
    query = sa.select(*columns).where(
        ReportEvent.kind == "closed",
        ReportEvent.slot >= slot_of(p.lo),
        ReportEvent.slot < slot_of(p.hi),
    )
    if p.inbox_ids is not None:
        query = query.where(ReportEvent.inbox_id.in_(p.inbox_ids))
    if p.agent_id is not None:
        query = query.where(ReportEvent.user_id == p.agent_id)
    return fetch(session, query)


def _count(session: Session, query: sa.Select) -> int:
    return session.scalar(query.with_only_columns(sa.func.count()).order_by(None)) or 0


def _targets(session: Session, p: Period) -> dict:
    """Missed reply windows, response-target breaches, and the share of targets met."""
    missed = _count(session, _waits(session, p, ReportWait.window_missed_at))
    breaches = _count(session, _waits(session, p, ReportWait.breached_at))
    answered = _waits(session, p, ReportWait.answered_at).with_only_columns(
        sa.func.count(), sa.func.count(ReportWait.breached_at)
    )
    total, late = session.execute(answered).one()  # one pass over the covering index
    met = (total or 0) - (late or 0)
    rate = met / (met + breaches) if met + breaches else None
    return {
        "reply_windows_missed": missed,
        "response_breaches": breaches,
        "response_met": met,
        "response_met_rate": None if rate is None else round(rate, 4),
    }


def _headline(session: Session, p: Period, detail: bool = True) -> tuple[dict, dict]:
    """The period's totals, and (``detail``) what the day and hour rollups need."""
    if detail:
        counted = _day_counts(session, p)
        days = _by_local_day(p, counted)
        totals = defaultdict(int)
        for kind, _index, n in days:
            totals[kind] += n
    else:  # the previous period: totals only
        kinds, user = _kinds(p)
        totals = {
            k.removesuffix("_by"): n for (_u, k), n in _totals(session, p, kinds, user).items()
        }
        counted = days = []
    firsts = _first_responses(session, p, *(("day", "inbox", "agent") if detail else ()))
    closes = _resolutions(session, p, *(("inbox", "agent") if detail else ()))
    first_seconds = _ordered(firsts)
    head = {
        "conversations": {k: totals.get(k, 0) for k in EVENTS},
        "messages": {k: totals.get(k, 0) for k in MESSAGES},
        "first_response_s": summary(first_seconds),
        "resolution_s": summary(_ordered(closes)),
        **_targets(session, p),
    }
    parts = {"counted": counted, "days": days, "firsts": firsts, "closes": closes}
    return head, parts | {"first_seconds": first_seconds}


def _names(session: Session, model, ids) -> dict[int, object]:
    ids = [i for i in set(ids) if i is not None]
    return (
        {row.id: row for row in session.scalars(sa.select(model).where(model.id.in_(ids)))}
        if ids
        else {}
    )


def _breakdown(session: Session, firsts: list[tuple], closes: list[tuple]) -> dict:
    """First response and resolution (median, p90) by channel, inbox and agent, from rows
    (seconds, day, inbox, agent) of first responses and (seconds, inbox, agent) of closes."""
    grouped = {
        "first_response_s": (_by(firsts, 2), _by(firsts, 3)),
        "resolution_s": (_by(closes, 1), _by(closes, 2)),
    }
    inboxes = _names(session, Inbox, {k for g in grouped.values() for k in g[0]})
    users = _names(session, User, {k for g in grouped.values() for k in g[1]})
    out = {}
    for name, (inbox_groups, by_agent) in grouped.items():
        by_inbox = {k: v for k, v in inbox_groups.items() if k in inboxes}
        by_channel: dict[str, list] = defaultdict(list)
        for k, v in by_inbox.items():
            by_channel[inboxes[k].channel].extend(v)
        for v in by_channel.values():
            v.sort()  # a few sorted runs: merged in one pass
        out[name] = {
            "channel": [{"channel": k, **summary(v)} for k, v in sorted(by_channel.items())],
            "inbox": [
                {"inbox": inboxes[k].ref(), **summary(v)} for k, v in sorted(by_inbox.items())
            ],
            "agent": [
                {"user": {"id": k, "name": users[k].name} if k in users else None, **summary(v)}
                for k, v in sorted(by_agent.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
            ],
        }
    return out


def overview(session: Session, p: Period) -> dict:
    """The overview report (``GET /api/v1/reports/overview``)."""
    head, parts = _headline(session, p)
    before, _ = _headline(session, p.previous(), detail=False)
    days = [p.start + timedelta(days=n) for n in range(p.days)]
    by_day = {d: defaultdict(int) for d in days}
    by_hour = [[0] * 24 for _ in range(7)]
    for kind, index, n in parts["days"]:
        day = local_hour(index)[0]
        if day in by_day:
            by_day[day][kind] += n
    for index, n in _by_local_hour(p, parts["counted"], "new").items():
        _day, weekday, hour = local_hour(index)
        by_hour[weekday][hour] += n
    day_firsts = {EPOCH + timedelta(days=day): v for day, v in _by(parts["firsts"], 1).items()}
    distribution = _distribution(parts["first_seconds"])
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
                "first_response_median_s": summary(day_firsts.get(d, []))["median"],
            }
            for d in days
        ],
        "by_hour": by_hour,
        "first_response_distribution": distribution,
        "breakdown": _breakdown(session, parts["firsts"], parts["closes"]),
    }


#: Upper bounds (seconds) of the response-time distribution's buckets; the last is open.
BUCKETS = (300, 900, 3600, 4 * 3600, 24 * 3600)


def _distribution(ordered: list[int]) -> list[dict]:
    """How many first responses fell in each bucket: ``[{up_to_s, count}]`` (last: None)."""
    ends = [bisect.bisect_right(ordered, b) for b in BUCKETS] + [len(ordered)]
    counts = [end - start for start, end in zip([0, *ends], ends, strict=False)]
    return [
        {"up_to_s": BUCKETS[n] if n < len(BUCKETS) else None, "count": c}
        for n, c in enumerate(counts)
    ]


# --------------------------------------------------------------------------- agents


def agents(session: Session, p: Period) -> list[dict]:
    """Per agent: assigned, closed, replies, first response and resolution times."""
    counts: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    for (user_id, kind), n in _totals(session, p, ("assigned_by", "closed_by", "reply")).items():
        counts[user_id][kind.removesuffix("_by")] += n
    for row in counts.values():
        row["replies"] = row.pop("reply", 0)
    everyone = replace(p, agent_id=None)
    firsts = _by(_first_responses(session, everyone, "agent"), 1)
    closes = _by(_resolutions(session, everyone, "agent"), 1)
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
                "first_response_s": summary(firsts.get(user.id, [])),
                "resolution_s": summary(closes.get(user.id, [])),
            }
        )
    return rows
