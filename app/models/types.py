"""Column types shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, hands back timezone-aware UTC datetimes.

    SQLite has no time zones; storing naive UTC everywhere keeps SQLite and
    PostgreSQL identical and comparisons index-friendly.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        """Aware -> naive UTC on the way in (naive values are taken as UTC)."""
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        """Naive UTC -> aware UTC on the way out."""
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


JSONType = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
