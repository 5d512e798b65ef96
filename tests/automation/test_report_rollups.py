"""Counts placed in a lead's local days and hours agree with each event's local date.

The counters keep 15-minute slots per UTC day; a report reads whole UTC days cut at
the zone's local midnight, and the days an offset changes slot by slot. Checked here
against the plain answer (each instant's local date and hour, if it falls in the
period) in zones east and west of UTC, with half- and quarter-hour offsets, with and
without daylight saving, for periods that start and end next to a change.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.inbox.report_facts import add_counts
from app.inbox.report_rollups import Period, local_days, local_hour
from app.models.report import NOBODY, slot_of

ZONES = (
    "UTC",
    "Europe/Paris",  # +1/+2, changes at 01:00 UTC
    "America/New_York",  # -5/-4
    "Asia/Kolkata",  # +5:30
    "Asia/Kathmandu",  # +5:45
    "America/St_Johns",  # -3:30/-2:30
    "Australia/Lord_Howe",  # +10:30/+11, a half-hour change
    "Pacific/Chatham",  # +12:45/+13:45
    "America/Santiago",  # changes at local midnight
    "Pacific/Kiritimati",  # +14
)
KINDS = ("new", "closed", "inbound")
FIRST = datetime(2025, 9, 1, tzinfo=UTC)


@pytest.fixture
def happened(session, make):
    """Three kinds of things at random instants over 14 months, in two inboxes, counted
    as they happen; returns ``[(kind, instant, inbox id)]``."""
    inboxes = [make.inbox("messenger").id, make.inbox("sms").id]
    rng = random.Random(11)
    out = []
    for _ in range(6000):
        at = FIRST + timedelta(seconds=rng.randrange(425 * 86400))
        out.append((rng.choice(KINDS), at, rng.choice(inboxes)))
    # crowd the instants around local midnights and the changes of the zones above
    for day in range(425):
        for minutes in (-61, -31, -16, -1, 0, 14, 29, 44, 59, 89):
            at = FIRST + timedelta(days=day, hours=rng.choice((0, 3, 5, 10, 11, 13, 14, 22)))
            out.append((rng.choice(KINDS), at + timedelta(minutes=minutes), inboxes[day % 2]))
    counts = Counter()
    for kind, at, inbox_id in out:
        counts[(kind, NOBODY, slot_of(at), inbox_id)] += 1
    add_counts(session, counts)
    session.commit()
    return out


def _expected(happened, p: Period):
    days, hours = Counter(), Counter()
    for kind, at, inbox_id in happened:
        if not p.lo <= at < p.hi or (p.inbox_ids is not None and inbox_id not in p.inbox_ids):
            continue
        local = at.astimezone(p.tz)
        days[(kind, local.date())] += 1
        if kind == "new":
            hours[(local.date(), local.hour)] += 1
    return days, hours


def _periods(zone: ZoneInfo):
    """A year, and short periods starting and ending at the zone's changes."""
    yield date(2025, 10, 1), date(2026, 9, 30)
    at = FIRST
    changes = []
    while at < FIRST + timedelta(days=420) and len(changes) < 4:
        nxt = at + timedelta(hours=1)
        if nxt.astimezone(zone).utcoffset() != at.astimezone(zone).utcoffset():
            changes.append(nxt.astimezone(zone).date())
        at = nxt
    for day in changes:
        yield day, day
        yield day - timedelta(days=1), day + timedelta(days=1)
        yield day + timedelta(days=1), day + timedelta(days=9)


@pytest.mark.parametrize("tz", ZONES)
def test_local_days_and_hours_match_each_instants_local_date(session, happened, tz):
    zone = ZoneInfo(tz)
    for start, end in _periods(zone):
        for inbox_ids in (None, (happened[0][2],)):
            p = Period(start, end, zone, inbox_ids)
            days, hours = local_days(session, p, KINDS, NOBODY, hourly="new")
            want_days, want_hours = _expected(happened, p)
            got_days = Counter({(kind, local_hour(i)[0]): n for kind, i, n in days})
            assert got_days == want_days, (tz, start, end, inbox_ids)
            got_hours = Counter({local_hour(i)[::2]: n for i, n in hours.items()})
            assert got_hours == want_hours, (tz, start, end, inbox_ids)
