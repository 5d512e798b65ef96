"""Business hours: a weekly schedule in the inbox's time zone, with holidays.

The inbox setting ``business_hours`` looks like::

    {"timezone": "Europe/Paris",
     "days": {"mon": [["09:00", "12:30"], ["13:30", "18:00"]], "sat": [["10:00", "14:00"]]},
     "holidays": ["2026-12-25"]}

A day that is missing (or has no spans) is closed; a holiday is closed all day
(local date). A span whose end is not after its start runs past midnight
(``["22:00", "02:00"]``). ``None`` means no schedule: always open, so no away
message is ever sent.

Quiet hours are the customer's (SMS): a span of their night, in the time zone
their number belongs to, when replies wait unless they wrote within the hour
(:data:`QUIET_GRACE`).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app import channels
from app.clock import aware
from app.models import ContactIdentity, Conversation
from connectors.sms import phone as sms_phone
from connectors.sms import quiet as sms_quiet

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
QUIET_GRACE = timedelta(minutes=60)  # a customer who wrote within the hour is awake


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _hhmm(value: str) -> time:
    hours, minutes = str(value).split(":")
    return time(int(hours), int(minutes))


def _spans_of(hours: dict, day: date) -> list[tuple[datetime, datetime]]:
    """The open spans that start on local ``day`` (naive local datetimes)."""
    if day.isoformat() in set(hours.get("holidays") or []):
        return []
    spans = (hours.get("days") or {}).get(DAYS[day.weekday()]) or []
    out = []
    for start, end in spans:
        begin = datetime.combine(day, _hhmm(start))
        finish = datetime.combine(day, _hhmm(end))
        if finish <= begin:  # runs past midnight
            finish += timedelta(days=1)
        out.append((begin, finish))
    return out


def is_open(hours: dict | None, at: datetime) -> bool:
    """True when ``at`` falls inside the schedule (always True without a schedule)."""
    if not hours:
        return True
    local = aware(at).astimezone(_zone(hours.get("timezone"))).replace(tzinfo=None)
    for day in (local.date() - timedelta(days=1), local.date()):  # yesterday's late span
        if any(begin <= local < finish for begin, finish in _spans_of(hours, day)):
            return True
    return False


def next_opening(hours: dict | None, at: datetime, horizon_days: int = 21) -> datetime | None:
    """When the schedule next opens after ``at`` (aware UTC), or None (no schedule / never)."""
    if not hours:
        return None
    zone = _zone(hours.get("timezone"))
    local = aware(at).astimezone(zone).replace(tzinfo=None)
    for offset in range(horizon_days + 1):
        for begin, _finish in sorted(_spans_of(hours, local.date() + timedelta(days=offset))):
            if begin > local:
                return begin.replace(tzinfo=zone).astimezone(aware(at).tzinfo)
    return None


def open_seconds(hours: dict | None, start: datetime, end: datetime) -> int:
    """Whole seconds between ``start`` and ``end`` inside the schedule (all of them without one).

    Spans are local wall-clock times, so a day that changes to or from daylight saving
    time has its spans as the clock shows them (an hour more or less of the night).
    """
    start, end = aware(start), aware(end)
    if end <= start:
        return 0
    if not hours:
        return int((end - start).total_seconds())
    zone = _zone(hours.get("timezone"))
    day, last = start.astimezone(zone).date() - timedelta(days=1), end.astimezone(zone).date()
    total = 0.0
    while day <= last:
        for begin, finish in _spans_of(hours, day):
            lo = max(begin.replace(tzinfo=zone), start)
            hi = min(finish.replace(tzinfo=zone), end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        day += timedelta(days=1)
    return int(total)


def quiet_hours_state(
    conv: Conversation, ident: ContactIdentity | None, at: datetime
) -> dict | None:
    """Where quiet hours apply (SMS): whether ``at`` is inside the customer's, and when they end."""
    if not channels.get(conv.inbox.channel).quiet_hours or ident is None:
        return None
    quiet = conv.inbox.setting("quiet_hours")
    if not quiet or not quiet.get("start") or not quiet.get("end"):
        return None
    tz = sms_phone.customer_timezone(ident.external_id, conv.inbox.setting("timezone") or "UTC")
    if not sms_quiet.in_quiet_hours(at, tz, quiet["start"], quiet["end"]):
        return {"quiet": False, "timezone": tz}
    ends = sms_quiet.quiet_ends_at(at, tz, quiet["start"], quiet["end"])
    return {"quiet": True, "timezone": tz, "ends_at": ends}
