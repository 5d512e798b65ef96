"""The report counters read in a lead's local days and hours.

:class:`~app.models.ReportCount` keeps, per kind, inbox, user and UTC day, a count for
each 15-minute slot. A report's :class:`Period` is made of local days in a time zone;
a local day is the end of one UTC day and the start of the next, cut where the local
midnight falls (the zone's offset, which daylight saving changes). A year's volumes
are read as a few sums per UTC day, cut in SQL at the period's local midnights; only
the days whose offset changes, and the kinds the hourly heat map needs, are read slot
by slot. What the days that have ended hold is kept between reports (:mod:`report_cache`).
"""

from __future__ import annotations

import bisect
import functools
import math
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.inbox.report_cache import kept, settled_day
from app.inbox.rows import fetch
from app.models import ReportCount
from app.models.report import QUARTERS, SLOT, slot_of


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


def offsets(p: Period) -> list[tuple[int, int]]:
    """``[(first slot, offset in slots)]``: the zone's UTC offset over the whole UTC days
    the period touches (the slots of its first day before it included).

    Read once a day; where it changed between two readings, the slot it changed at is
    found by halving (daylight saving changes at most a few times a year).
    """
    lo = slot_of(p.lo) // QUARTERS * QUARTERS
    hi = (slot_of(p.hi) - 1) // QUARTERS * QUARTERS + QUARTERS

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


#: Slots in a local hour and in a local day.
HOUR, DAY = 3600 // SLOT, 86400 // SLOT
EPOCH = date(1970, 1, 1)


def local_hour(index: int) -> tuple[date, int, int]:
    """Local date, weekday and hour of a local hour counted from the epoch."""
    day = EPOCH + timedelta(days=index // 24)
    return day, day.weekday(), index % 24


@functools.cache
def _counted_query(by_inbox: bool, listed: bool) -> sa.Select:
    """The slot counts of some kinds on a range of UTC days (or ``listed`` ones), summed
    over inboxes (96 sums: built once, then bound)."""
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
        )
        .group_by(c.kind, c.day)
    )
    if listed:
        query = query.where(c.day.in_(sa.bindparam("days", expanding=True)))
    else:
        query = query.where(c.day >= sa.bindparam("first_day"), c.day < sa.bindparam("end_day"))
    if by_inbox:
        query = query.where(c.inbox_id.in_(sa.bindparam("inboxes", expanding=True)))
    return query


def _split(days: range | list[int]) -> tuple[range | list[int], range | list[int]]:
    """``days`` as those that have ended and the others (today's, and any after it)."""
    ended = settled_day()
    if isinstance(days, range):
        return range(days.start, min(days.stop, ended)), range(max(days.start, ended), days.stop)
    return [d for d in days if d < ended], [d for d in days if d >= ended]


def _day_params(p: Period, kinds, user: int, days: range | list[int]) -> dict:
    params = {"kinds": list(kinds), "user": user}
    if isinstance(days, range):
        params.update(first_day=days.start, end_day=days.stop)
    else:
        params["days"] = list(days)
    if p.inbox_ids is not None:
        params["inboxes"] = list(p.inbox_ids)
    return params


@functools.cache
def _total_query(by_inbox: bool, listed: bool) -> sa.Select:
    """The sum of the counts of some kinds on some UTC days (a kept read's digest)."""
    c = ReportCount.__table__.c
    query = _filtered(sa.select(sa.func.coalesce(sa.func.sum(c.total), 0)), False, by_inbox)
    if listed:
        return query.where(c.day.in_(sa.bindparam("days", expanding=True)))
    return query.where(c.day >= sa.bindparam("first_day"), c.day < sa.bindparam("end_day"))


def _kept_rows(session: Session, p: Period, name, query: sa.Select, params: dict, total):
    """The rows of ``query`` (``name``: what it reads) on ended days, kept between reports
    (:mod:`report_cache`); ``total(rows)`` is the sum of their counts."""
    days = (params.get("first_day"), params.get("end_day"), tuple(params.get("days", ())))
    key = (name, tuple(params["kinds"]), params["user"], p.inbox_ids, days)
    listed = "days" in params
    return kept(
        session,
        key,
        lambda: fetch(session, query.params(**params)),
        total,
        lambda: int(session.scalar(_total_query(p.inbox_ids is not None, listed).params(**params))),
    )


def _read_days(session: Session, p: Period, name, query_of, kinds, user, days, total):
    """The rows of ``query_of(listed)`` for ``kinds`` and ``user`` on ``days``: those of
    ended days kept (:func:`_kept_rows`), the others read."""
    ended, live = _split(days)
    rows: list[tuple] = []
    if ended:
        params = _day_params(p, kinds, user, ended)
        rows += _kept_rows(session, p, name, query_of(isinstance(ended, list)), params, total)
    if live:
        params = _day_params(p, kinds, user, live)
        rows += fetch(session, query_of(isinstance(live, list)).params(**params))
    return rows


def counted(
    session: Session, p: Period, kinds: tuple[str, ...], user: int, days: range | list[int]
) -> list[tuple[str, int, list[int]]]:
    """Rows ``(kind, UTC day, [count per slot])`` of :class:`ReportCount` on ``days`` (a
    range, or a few listed days), slots outside the period at 0."""
    if not days or not kinds:
        return []
    lo, hi = slot_of(p.lo), slot_of(p.hi)
    rows = _read_days(
        session,
        p,
        "counted",
        lambda listed: _counted_query(p.inbox_ids is not None, listed),
        kinds,
        user,
        days,
        lambda rows: sum(sum(row[2:]) for row in rows),
    )
    out = []
    for kind, day, *counts in rows:
        base = day * QUARTERS
        if base < lo:  # the period starts within this UTC day
            counts[: lo - base] = [0] * (lo - base)
        if base + QUARTERS > hi:
            counts[hi - base :] = [0] * (base + QUARTERS - hi)
        out.append((kind, day, counts))
    return out


@functools.lru_cache(maxsize=64)
def _cut_query(by_inbox: bool, cuts: tuple[int, ...]) -> sa.Select:
    """Per kind and UTC day, summed over inboxes: the day's count, then for each cut ``k``
    the count of its slots before ``k`` (the part before the local midnight) or, for a
    cut in the day's second half, after it (fewer columns to add: see :func:`_early`)."""
    c = ReportCount.__table__.c
    parts = (range(k) if k <= QUARTERS // 2 else range(k, QUARTERS) for k in cuts)
    query = (
        sa.select(
            c.kind,
            c.day,
            sa.func.sum(c.total),
            *(sa.func.sum(sum(c[f"q{n}"] for n in part)) for part in parts),
        )
        .where(
            c.kind.in_(sa.bindparam("kinds", expanding=True)),
            c.user_id == sa.bindparam("user"),
            c.day >= sa.bindparam("first_day"),
            c.day < sa.bindparam("end_day"),
        )
        .group_by(c.kind, c.day)
    )
    if by_inbox:
        query = query.where(c.inbox_id.in_(sa.bindparam("inboxes", expanding=True)))
    return query


def _early(cut: int, total: int, part: int) -> int:
    """The count before ``cut`` from a :func:`_cut_query` column."""
    return part if cut <= QUARTERS // 2 else total - part


def _steady_offsets(p: Period) -> tuple[dict[int, int], list[int]]:
    """The period's UTC days: ``{day: offset}`` of those with one offset all day, and the
    days whose offset changes (daylight saving)."""
    spans = offsets(p)
    lo, hi = slot_of(p.lo), slot_of(p.hi)
    steady, changing = {}, []
    for day in range(lo // QUARTERS, (hi - 1) // QUARTERS + 1):
        base = day * QUARTERS
        first, last = _offset_at(spans, base), _offset_at(spans, base + QUARTERS - 1)
        if first == last:
            steady[day] = first
        else:
            changing.append(day)
    return steady, changing


def local_days(
    session: Session, p: Period, kinds: tuple[str, ...], user: int, hourly: str
) -> tuple[list[tuple[str, int, int]], dict[int, int]]:
    """``(kind, local day's first hour index, count)`` of ``kinds`` over the period's local
    days, and ``{local hour index: count}`` of the kind ``hourly`` (the heat map's).

    Each UTC day with one offset is read as its count and the count before its local
    midnight; the part of the first and last UTC days outside the period falls on local
    days outside it and is left out. ``hourly``, and every kind on a day the offset
    changes, are read slot by slot.
    """
    steady, changing = _steady_offsets(p)
    first_day, last_day = min([*steady, *changing]), max([*steady, *changing])
    cuts = tuple(sorted({(-off) % QUARTERS for off in steady.values()} - {0}))
    others = tuple(k for k in kinds if k != hourly)
    out: dict[tuple[str, int], int] = defaultdict(int)
    rows: list = []
    if others:
        rows = _read_days(
            session,
            p,
            ("cut", cuts),
            lambda _listed: _cut_query(p.inbox_ids is not None, cuts),
            others,
            user,
            range(first_day, last_day + 1),
            lambda rows: sum(row[2] for row in rows),
        )
    for kind, day, total, *before in rows:
        off = steady.get(day)
        if off is None:  # read slot by slot below
            continue
        cut = (-off) % QUARTERS
        early = _early(cut, total, before[cuts.index(cut)]) if cut else 0
        if early:
            out[(kind, (day * QUARTERS + off) // DAY * 24)] += early
        if total - early:
            out[(kind, (day * QUARTERS + cut + off) // DAY * 24)] += total - early
    every_day = range(first_day, last_day + 1)
    hourly_rows = counted(session, p, (hourly,), user, every_day) if hourly in kinds else []
    slot_rows = hourly_rows + counted(session, p, others, user, changing)
    for kind, index, n in by_local_day(p, slot_rows):
        out[(kind, index)] += n
    first_index, last_index = (p.start - EPOCH).days * 24, (p.end - EPOCH).days * 24
    days = [
        (kind, index, n)
        for (kind, index), n in out.items()
        if n and first_index <= index <= last_index
    ]
    return days, by_local_hour(p, hourly_rows, hourly)


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
    query = sa.select(c.user_id, c.kind, sa.func.sum(c.total)).where(
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


def kind_totals(
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


def by_local_day(p: Period, rows) -> list[tuple[str, int, int]]:
    """``(kind, local day's first hour index, count)``: :func:`counted` rows in local days."""
    spans = offsets(p)
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


def by_local_hour(p: Period, rows, kind: str) -> dict[int, int]:
    """``{local hour index: count}`` of one kind of :func:`counted` rows."""
    spans = offsets(p)
    out: dict[int, int] = defaultdict(int)
    for _kind, day, counts in rows:
        if _kind != kind:
            continue
        base = day * QUARTERS
        first, last = _offset_at(spans, base), _offset_at(spans, base + QUARTERS - 1)
        if first == last:  # local hours cut the day's slots in runs of four
            start = base + first
            cut = -start % HOUR  # the first run: the rest of the local hour the day starts in
            for a in range(cut - HOUR if cut else 0, QUARTERS, HOUR):
                n = sum(counts[max(a, 0) : a + HOUR])
                if n:
                    out[(start + max(a, 0)) // HOUR] += n
            continue
        for q, n in enumerate(counts):
            if n:
                out[(base + q + _offset_at(spans, base + q)) // HOUR] += n
    return out
