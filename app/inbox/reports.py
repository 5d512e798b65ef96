"""Reports for team leads, read from the facts recorded as things happened.

:mod:`app.inbox.report_facts` keeps ``report_events`` (started, closed, reopened,
assigned) and ``report_waits`` (each customer's wait for an answer); messages are
counted from their own table. Everything is stored in UTC; a report takes inclusive
local dates and a time zone (:class:`Period`), counts an event on the local day (and
weekday and hour) it happened, a first response on the day it was given and a missed
reply window on the day it closed. Counts are grouped by 15-minute slots in the
database and placed in local days and hours by :mod:`app.inbox.report_rollups`, so any
time zone (daylight saving included) costs the same. Medians and 90th percentiles are of
whole seconds; response times are counted within the inbox's business hours where it has
them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.inbox.report_rollups import (
    EPOCH,
    Period,
    kind_totals,
    local_days,
    local_hour,
)
from app.inbox.report_stats import counts_up_to, grouped, merged, summary
from app.inbox.report_values import CLOSES, FIRSTS, local_day_of, period_columns
from app.models import Inbox, ReportWait, User
from app.models.report import NOBODY

MAX_DAYS = 400  # a year and a little


class InvalidPeriod(ValueError):
    """Dates that make no period (``to`` before ``from``, too long, unknown time zone)."""


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


def _change(now_value, before_value) -> float | None:
    """The relative change against the previous period (None when it had nothing)."""
    if now_value is None or not before_value:
        return None
    return round((now_value - before_value) / before_value, 4)


EVENTS = ("new", "closed", "reopened")
MESSAGES = ("inbound", "outbound")
#: Waits answered, and those answered after their response target (report_facts.wait_keys).
ANSWERS = ("answered", "late")


def _kinds(p: Period) -> tuple[tuple[str, ...], int]:
    """The counted kinds of conversation events and messages, and whose: everyone's, or
    with an agent filter that agent's own (``new_by`` ...)."""
    if p.agent_id is None:
        return EVENTS + MESSAGES + ANSWERS, NOBODY
    return tuple(f"{k}_by" for k in EVENTS + MESSAGES + ANSWERS), p.agent_id


def _day_counts(session: Session, p: Period) -> tuple[list[tuple[str, int, int]], dict]:
    """Conversation events and messages by local day (kinds without ``_by``), and new
    conversations by local hour: :func:`report_rollups.local_days`.

    Read from the counters (:class:`ReportCount`), never the messages.
    """
    kinds, user = _kinds(p)
    days, hours = local_days(session, p, kinds, user, hourly=kinds[0])
    return [(k.removesuffix("_by"), index, n) for k, index, n in days], hours


def _waits(session: Session, p: Period, column, *conds) -> sa.Select:
    query = sa.select(ReportWait).where(column >= p.lo, column < p.hi, *conds)
    if p.inbox_ids is not None:
        query = query.where(ReportWait.inbox_id.in_(p.inbox_ids))
    if p.agent_id is not None:
        query = query.where(ReportWait.agent_id == p.agent_id)
    return query


def _first_responses(session: Session, p: Period, *keys: str) -> list[np.ndarray]:
    """Columns (seconds within hours, *keys) of the period's first responses; keys are
    ``day`` (local day index), ``inbox`` and ``agent`` (:data:`NOBODY` for none)."""
    seconds, slots, inboxes, agents = period_columns(session, FIRSTS, p)
    named = {"inbox": inboxes, "agent": agents}
    return [seconds, *(local_day_of(slots, p) if k == "day" else named[k] for k in keys)]


def _resolutions(session: Session, p: Period, *keys: str) -> list[np.ndarray]:
    """Columns (seconds, *keys) of the period's closes; keys are ``inbox`` and ``agent``."""
    seconds, _slots, inboxes, agents = period_columns(session, CLOSES, p)
    named = {"inbox": inboxes, "agent": agents}
    return [seconds, *(named[k] for k in keys)]


def _count(session: Session, query: sa.Select) -> int:
    return session.scalar(query.with_only_columns(sa.func.count()).order_by(None)) or 0


def _targets(session: Session, p: Period, totals: dict) -> dict:
    """Missed reply windows, response-target breaches, and the share of targets met (from
    the period's counted ``answered`` and ``late`` waits in ``totals``)."""
    missed = _count(session, _waits(session, p, ReportWait.window_missed_at))
    breaches = _count(session, _waits(session, p, ReportWait.breached_at))
    met = totals.get("answered", 0) - totals.get("late", 0)
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
        days, new_by_hour = _day_counts(session, p)
        totals = defaultdict(int)
        for kind, _index, n in days:
            totals[kind] += n
    else:  # the previous period: totals only
        kinds, user = _kinds(p)
        totals = {
            k.removesuffix("_by"): n for (_u, k), n in kind_totals(session, p, kinds, user).items()
        }
        days, new_by_hour = [], {}
    firsts = _first_responses(session, p, *(("day", "inbox", "agent") if detail else ()))
    closes = _resolutions(session, p, *(("inbox", "agent") if detail else ()))
    by_group = (
        {  # by inbox and by agent
            "first_response_s": (grouped(firsts[0], firsts[2]), grouped(firsts[0], firsts[3])),
            "resolution_s": (grouped(closes[0], closes[1]), grouped(closes[0], closes[2])),
        }
        if detail
        else {}
    )
    first_seconds, close_seconds = np.sort(firsts[0]), np.sort(closes[0])
    head = {
        "conversations": {k: totals.get(k, 0) for k in EVENTS},
        "messages": {k: totals.get(k, 0) for k in MESSAGES},
        "first_response_s": summary(first_seconds),
        "resolution_s": summary(close_seconds),
        **_targets(session, p, totals),
    }
    parts = {"new_by_hour": new_by_hour, "days": days, "firsts": firsts, "grouped": by_group}
    return head, parts | {"first_seconds": first_seconds}


def _names(session: Session, model, ids) -> dict[int, object]:
    ids = [i for i in set(ids) if i is not None]
    return (
        {row.id: row for row in session.scalars(sa.select(model).where(model.id.in_(ids)))}
        if ids
        else {}
    )


def _breakdown(session: Session, groups: dict) -> dict:
    """First response and resolution (median, p90) by channel, inbox and agent, from
    ``{"first_response_s": (by inbox, by agent), "resolution_s": (...)}`` (:func:`grouped`;
    :data:`NOBODY` for no agent)."""
    inboxes = _names(session, Inbox, {k for g in groups.values() for k in g[0]})
    users = _names(session, User, {k for g in groups.values() for k in g[1]})
    out = {}
    for name, (inbox_groups, by_agent) in groups.items():
        by_inbox = {k: v for k, v in inbox_groups.items() if k in inboxes}
        by_channel: dict[str, list] = defaultdict(list)
        for k, v in by_inbox.items():
            by_channel[inboxes[k].channel].append(v)
        by_channel = {k: merged(v) for k, v in by_channel.items()}
        out[name] = {
            "channel": [{"channel": k, **summary(v)} for k, v in sorted(by_channel.items())],
            "inbox": [
                {"inbox": inboxes[k].ref(), **summary(v)} for k, v in sorted(by_inbox.items())
            ],
            "agent": [
                {"user": {"id": k, "name": users[k].name} if k in users else None, **summary(v)}
                for k, v in sorted(by_agent.items(), key=lambda kv: (kv[0] == NOBODY, kv[0]))
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
    for index, n in parts["new_by_hour"].items():  # the epoch's day was a Thursday
        by_hour[(index // 24 + EPOCH.weekday()) % 7][index % 24] += n
    firsts = parts["firsts"]
    day_firsts = {EPOCH + timedelta(days=day): v for day, v in grouped(*firsts[:2]).items()}
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
        "breakdown": _breakdown(session, parts["grouped"]),
    }


#: Upper bounds (seconds) of the response-time distribution's buckets; the last is open.
BUCKETS = (300, 900, 3600, 4 * 3600, 24 * 3600)


def _distribution(ordered: np.ndarray) -> list[dict]:
    """How many first responses fell in each bucket: ``[{up_to_s, count}]`` (last: None)."""
    counts = counts_up_to(ordered, BUCKETS)
    return [
        {"up_to_s": BUCKETS[n] if n < len(BUCKETS) else None, "count": c}
        for n, c in enumerate(counts)
    ]


# --------------------------------------------------------------------------- agents


def agents(session: Session, p: Period) -> list[dict]:
    """Per agent: assigned, closed, replies, first response and resolution times."""
    counts: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    done = kind_totals(session, p, ("assigned_by", "closed_by", "reply"))
    for (user_id, kind), n in done.items():
        counts[user_id][kind.removesuffix("_by")] += n
    for row in counts.values():
        row["replies"] = row.pop("reply", 0)
    everyone = replace(p, agent_id=None)
    firsts = grouped(*_first_responses(session, everyone, "agent"))
    closes = grouped(*_resolutions(session, everyone, "agent"))
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
