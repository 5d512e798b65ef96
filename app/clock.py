"""The one clock. Everything that needs "now" asks here, so tests can move time."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def naive(dt: datetime | None) -> datetime | None:
    """Convert an aware datetime to naive UTC for storage (None passes through)."""
    if dt is None:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def aware(dt: datetime | None) -> datetime | None:
    """Treat a stored naive datetime as UTC (None passes through)."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z`` suffix, as the API speaks."""
    if dt is None:
        return None
    return aware(dt).isoformat(timespec="milliseconds").replace("+00:00", "Z")
