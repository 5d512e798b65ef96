"""Quiet hours: nobody wants a business text at 5 a.m.

Windows are given in the customer's local wall-clock time (``"21:00"`` to
``"08:00"``) and may cross midnight. The start is inside the window, the end
is not: with 21:00-08:00, 20:59 and 08:00 are fine, 21:00 and 07:59 are quiet.
A window whose start equals its end is empty (no quiet hours).

Local times that do not exist (a DST gap) resolve with the offset before the
change, i.e. a little later in real time; repeated local times (DST fold) use
their first occurrence.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

TimeLike = str | time


def parse_time(value: TimeLike) -> time:
    """``"HH:MM"`` (or ``"HH:MM:SS"``) or a ``time`` as a naive ``time``."""
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    try:
        return time.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"not a time of day (HH:MM): {value!r}") from exc


def _aware_utc(now_utc: datetime) -> datetime:
    """``now_utc`` as an aware UTC datetime (naive values are taken as UTC)."""
    if now_utc.tzinfo is None:
        return now_utc.replace(tzinfo=UTC)
    return now_utc.astimezone(UTC)


def _in_window(t: time, start: time, end: time) -> bool:
    """True when local time ``t`` is in [start, end), the window possibly crossing midnight."""
    if start == end:
        return False
    if start < end:
        return start <= t < end
    return t >= start or t < end


def in_quiet_hours(
    now_utc: datetime, tz_name: str, start: TimeLike = "21:00", end: TimeLike = "08:00"
) -> bool:
    """True when ``now_utc`` falls in the quiet window in zone ``tz_name``."""
    local = _aware_utc(now_utc).astimezone(ZoneInfo(tz_name))
    return _in_window(local.time().replace(tzinfo=None), parse_time(start), parse_time(end))


def quiet_ends_at(
    now_utc: datetime, tz_name: str, start: TimeLike = "21:00", end: TimeLike = "08:00"
) -> datetime:
    """The next moment (UTC, strictly after ``now_utc``) a quiet window ends.

    Inside quiet hours this is when sending becomes acceptable; outside, it is
    the end of the next window. See :func:`earliest_send_at` for "now or later".
    With an empty window (start == end) there is nothing to wait for and
    ``now_utc`` is returned.
    """
    now = _aware_utc(now_utc)
    start_t, end_t = parse_time(start), parse_time(end)
    if start_t == end_t:
        return now
    zone = ZoneInfo(tz_name)
    today = now.astimezone(zone).date()
    for offset in range(-1, 3):
        day = today + timedelta(days=offset)
        candidate = datetime.combine(day, end_t, tzinfo=zone).astimezone(UTC)
        if candidate > now:
            return candidate
    raise AssertionError("unreachable: an end time exists within three days")  # pragma: no cover


def earliest_send_at(
    now_utc: datetime, tz_name: str, start: TimeLike = "21:00", end: TimeLike = "08:00"
) -> datetime:
    """``now_utc`` when sending is fine now, else when the current quiet window ends (UTC)."""
    now = _aware_utc(now_utc)
    if in_quiet_hours(now, tz_name, start, end):
        return quiet_ends_at(now, tz_name, start, end)
    return now
